#!/usr/bin/env bash
# Run the Rust library tests (kernels, every SIMD path) on an emulated AVX-512F CPU.
#
# Why: the development machines expose AVX2 but not AVX-512, and QEMU's TCG cannot execute
# AVX-512, so the AVX-512 path is otherwise never run. Bochs (Debian package) emulates EVEX.
#
# Usage: tools/avx512_under_bochs.sh [WORKDIR] [TEST_FILTER...]
#   WORKDIR       defaults to /tmp/smoothmax-bochs (everything is built there, the repo is not touched
#                 apart from reading it; cargo uses WORKDIR/target)
#   TEST_FILTER   passed to the libtest binary inside the guest (substring filters), e.g.
#                 every_isa_matches_scalar_bit_for_bit special_values
# Env: BOCHS_TIME_LIMIT  seconds for the emulator (default 5400; boot ~2 min, whole suite ~25 min)
#      KERNEL_PKG        Debian kernel package (default: what linux-image-amd64 depends on)
#      BOCHS_CPU         Bochs CPU model (default corei7_skylake_x)
# Needs root (apt-get) on Debian bookworm. Exits non-zero if a test failed, the guest did not see
# avx512f, or no final marker appeared.
set -euo pipefail

WORK=${1:-/tmp/smoothmax-bochs}
shift || true
FILTERS=("$@")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TIME_LIMIT=${BOCHS_TIME_LIMIT:-5400}
# skylake_x is the default; tigerlake (more AVX-512 extensions) also works thanks to clearcpuid=fsrm
# below.
CPU_MODEL=${BOCHS_CPU:-corei7_skylake_x}
MARKER="=== SMOOTHMAX-BOCHS-DONE"

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
cd "$WORK"
log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

# --- 1. Host tools (Debian packages) ---------------------------------------------------------
# bochs-term: Debian's Bochs has no "nogui" display; the curses one runs headless under script(1).
PKGS=(bochs bochs-term bochsbios vgabios isolinux syslinux-common xorriso cpio)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. A static test binary (no Python, no dynamic loader needed in the guest) ----------------
# --target makes RUSTFLAGS apply to the target only; without it crt-static also hits proc-macros.
HOST=$(rustc -vV | sed -n 's/^host: //p')
log "building the test binary (cargo, target dir $WORK/target)"
(cd "$REPO" && CARGO_TARGET_DIR="$WORK/target" RUSTFLAGS="-C target-feature=+crt-static" \
  cargo test --release --no-default-features --lib --no-run --target "$HOST" \
  --message-format=json-render-diagnostics) > cargo.json
TEST_BIN=$(grep -o '"executable":"[^"]*"' cargo.json | tail -n1 | cut -d'"' -f4)
[ -x "$TEST_BIN" ] || { echo "no test executable found in cargo output" >&2; exit 1; }
if command -v file >/dev/null; then
  file "$TEST_BIN" | grep -q "static" || { echo "test binary is not static: $(file "$TEST_BIN")" >&2; exit 1; }
fi
log "test binary: $TEST_BIN"

# --- 3. Kernel and busybox from Debian's archive ----------------------------------------------
kernel_pkg() {
  apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n1 || true
}
if [ -z "${KERNEL_PKG:-}" ]; then
  KERNEL_PKG=$(kernel_pkg)
  [ -n "$KERNEL_PKG" ] || { apt-get update -qq; KERNEL_PKG=$(kernel_pkg); }
  [ -n "$KERNEL_PKG" ] || { echo "cannot resolve linux-image-amd64 (apt lists?)" >&2; exit 1; }
fi
mkdir -p debs
if [ ! -f debs/.done-"$KERNEL_PKG" ]; then
  log "downloading $KERNEL_PKG and busybox-static"
  rm -rf debs/* debs/.done-*
  (cd debs && apt-get download "$KERNEL_PKG" busybox-static >/dev/null 2>&1 \
     && for d in *.deb; do dpkg-deb -x "$d" x; done && touch .done-"$KERNEL_PKG")
fi
VMLINUZ=$(ls debs/x/boot/vmlinuz-* | head -n1)
BUSYBOX=debs/x/bin/busybox

# --- 4. initramfs: busybox + test binary + /init that runs the tests and powers off ------------
rm -rf initrd iso
mkdir -p initrd/bin initrd/proc initrd/sys initrd/dev initrd/tmp iso/isolinux
cp "$BUSYBOX" initrd/bin/busybox
cp "$TEST_BIN" initrd/smoothmax-tests
printf '%s\n' "${FILTERS[@]}" > initrd/filters
cat > initrd/init <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
echo "=== GUEST BOOTED: uptime $(cut -d' ' -f1 /proc/uptime)s"
grep -m1 '^model name' /proc/cpuinfo
echo "=== CPUINFO $(grep -m1 '^flags' /proc/cpuinfo)"
if grep -qw avx512f /proc/cpuinfo; then echo "=== avx512f: yes"; else echo "=== avx512f: NO"; fi
FILTERS=$(cat /filters)
cd /tmp
export RUST_BACKTRACE=1
echo "=== RUN 1: default ISA selection (the tests loop over every ISA the CPU supports)"
/smoothmax-tests --test-threads=1 --nocapture $FILTERS; rc1=$?
echo "=== RUN 1 exit=$rc1 uptime $(cut -d' ' -f1 /proc/uptime)s"
# Run 2 checks that forcing avx512 is accepted and that the default-ISA tests pass with it; the
# slow sweeps loop over every ISA themselves (the variable changes nothing there), so skip them.
echo "=== RUN 2: SMOOTHMAX_SIMD=avx512 (forcing is accepted only if the ISA is supported)"
SMOOTHMAX_SIMD=avx512 /smoothmax-tests --test-threads=1 $FILTERS \
  --skip _within_one_ulp_sampled --skip rows_of_ten_million; rc2=$?
echo "=== RUN 2 exit=$rc2 uptime $(cut -d' ' -f1 /proc/uptime)s"
echo "=== SMOOTHMAX-BOCHS-DONE rc1=$rc1 rc2=$rc2"
# poweroff -f does not wait for the emulated UART to drain the console buffer.
sleep 5
poweroff -f
EOF
chmod +x initrd/init
(cd initrd && find . | cpio -o -H newc --quiet | gzip -1) > iso/initrd.gz

# --- 5. Bootable ISO (isolinux) ----------------------------------------------------------------
# clearcpuid works around two Bochs 2.7 CPUID bugs that make Linux disable XSAVE (and so AVX-512):
#  pku,ospke    CPUID.(0xD,9) reports PKRU with size/offset 0 although XCR0 may enable it;
#  xsavec,xsaves CPUID.(0xD,1).EBX gives the standard-format size, not the compacted one.
# Without them the kernel warns "XSAVE consistency problem" and AVX-512 is unusable.
# fsrm: with it (tigerlake, icelake) the kernel's text gets corrupted right after "LSM: Security
# Framework initializing" (endless page faults on garbage in the #PF handler); clearing it fixes
# tigerlake (icelake not retried).
cp "$VMLINUZ" iso/vmlinuz
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 iso/isolinux/
cat > iso/isolinux/isolinux.cfg <<'EOF'
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND console=ttyS0,115200 quiet clearcpuid=pku,ospke,xsavec,xsaves,fsrm mitigations=off panic=-1
EOF
xorriso -as mkisofs -quiet -o boot.iso -b isolinux/isolinux.bin -c isolinux/boot.cat \
  -no-emul-boot -boot-load-size 4 -boot-info-table iso 2>/dev/null

# --- 6. Bochs configuration --------------------------------------------------------------------
# sync=none: guest time follows instruction count, so timers don't swamp the slow emulation.
cat > bochsrc <<EOF
display_library: term
config_interface: textconfig
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
cpu: model=$CPU_MODEL, count=1, ips=200000000, reset_on_triple_fault=0, ignore_bad_msrs=1
memory: guest=2048, host=2048
clock: sync=none, time0=utc
pci: enabled=1, chipset=i440fx
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path=$WORK/boot.iso, status=inserted
boot: cdrom
floppy_bootsig_check: disabled=1
com1: enabled=1, mode=file, dev=$WORK/serial.log
speaker: enabled=0
mouse: enabled=0
log: $WORK/bochs.log
panic: action=fatal
error: action=report
info: action=report
debug: action=ignore
EOF
# Debian's Bochs is built with the debugger, which stops at a prompt before the first
# instruction: feed it "continue".
printf 'c\n' > dbgrc

# --- 7. Run it, headless and with a deadline ---------------------------------------------------
rm -f serial.log bochs.log
START=$(date +%s)
log "starting Bochs ($CPU_MODEL); serial log: $WORK/serial.log"
# The term display needs a tty: script(1) provides a pseudo-terminal.
TERM=xterm script -qfec "bochs -q -f $WORK/bochsrc -rc $WORK/dbgrc" /dev/null \
  </dev/null >bochs.stdout 2>&1 &
SCRIPT_PID=$!
BOCHS_PID="" DRAIN_PID=""
cleanup() {
  # Bochs ignores SIGTERM while its debugger is active: stop it by pid with SIGKILL.
  [ -n "$BOCHS_PID" ] && kill -9 "$BOCHS_PID" 2>/dev/null || true
  kill "$SCRIPT_PID" 2>/dev/null || true
  [ -n "$DRAIN_PID" ] && kill "$DRAIN_PID" 2>/dev/null || true
}
trap cleanup EXIT
# With the debugger compiled in, the term display draws on a pty of its own ("Bochs connected to
# screen /dev/pts/N"). Nobody reads it, so once its buffer fills (after some minutes) Bochs blocks
# in write() and the guest freezes: read it into /dev/null.
for _ in $(seq 60); do
  PTS=$(sed -n 's/.*Bochs connected to screen "\([^"]*\)".*/\1/p' bochs.stdout 2>/dev/null | head -n1)
  [ -n "$PTS" ] && break
  sleep 1
done
[ -n "$PTS" ] || { echo "Bochs did not start (see $WORK/bochs.stdout)" >&2; exit 1; }
cat "$PTS" > /dev/null 2>&1 &
DRAIN_PID=$!

seen=0 booted=0 status="timeout"
while :; do
  sleep 10
  [ -z "$BOCHS_PID" ] && BOCHS_PID=$(pgrep -P "$SCRIPT_PID" bochs-bin || true)
  now=$(( $(date +%s) - START ))
  if [ -f serial.log ]; then
    # Show progress: new marker and test lines since the last poll.
    total=$(wc -l < serial.log)
    if (( total > seen )); then
      sed -n "$((seen + 1)),${total}p" serial.log | grep -E '^(===|test |running )' \
        | sed "s/^/[+${now}s] /" || true
      seen=$total
    fi
    if (( ! booted )) && grep -q '^=== GUEST BOOTED' serial.log; then
      booted=1; log "guest reached /init after ${now}s"
    fi
    if grep -q "^$MARKER" serial.log; then status="done"; break; fi
    if grep -q "Kernel panic" serial.log; then status="kernel panic"; break; fi
  fi
  if ! kill -0 "$SCRIPT_PID" 2>/dev/null; then status="bochs exited early"; break; fi
  if (( now > TIME_LIMIT )); then break; fi
done
ELAPSED=$(( $(date +%s) - START ))
sleep 2
# Bochs may have powered off between the marker check and the liveness check.
[ "$status" = "bochs exited early" ] && grep -q "^$MARKER" serial.log && status="done"
cleanup
trap - EXIT

# --- 8. Report ---------------------------------------------------------------------------------
echo
echo "================ guest output (serial log, from /init on) ================"
sed -n '/^=== GUEST BOOTED/,$p' serial.log 2>/dev/null | tr -d '\r' || true
echo "=========================================================================="
log "status: $status after ${ELAPSED}s of emulation (bochs log: $WORK/bochs.log)"

if [ "$status" != "done" ]; then
  echo "FAIL: no final marker ($status); last serial lines:" >&2
  tail -n 30 serial.log 2>/dev/null >&2 || true
  exit 1
fi
grep -q '^=== avx512f: yes' serial.log || { echo "FAIL: the guest CPU did not report avx512f" >&2; exit 1; }
line=$(grep "^$MARKER" serial.log | tr -d '\r')
rc1=$(sed -n 's/.*rc1=\([0-9]*\).*/\1/p' <<<"$line")
rc2=$(sed -n 's/.*rc2=\([0-9]*\).*/\1/p' <<<"$line")
if [ "$rc1" = 0 ] && [ "$rc2" = 0 ]; then
  log "PASS: tests passed on the emulated AVX-512F CPU"
else
  echo "FAIL: test exit codes rc1=$rc1 rc2=$rc2" >&2
  exit 1
fi
