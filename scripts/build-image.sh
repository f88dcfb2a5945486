#!/usr/bin/env bash
# Builds the payfac container image with podman and smoke-tests it, on a machine with no image
# registry:
#   1. the runtime base: Debian bookworm (minbase + ca-certificates + libpq5) made with debootstrap
#      from Debian's mirror and imported as localhost/payfac-base:bookworm (rootfs cached);
#   2. the binary: `cargo build --release --locked -p server` on the host (Debian 12 = bookworm:
#      same glibc and libpq as the base), copied in with the Containerfile's BINARY_SOURCE=context
#      (the from-source stage needs a Rust image from a registry: see the Containerfile);
#   3. the image localhost/payfac:<version> (and :latest);
#   4. smoke tests: `payfac --version`, every shared library resolved, non-root user, and
#      `payfac serve` in the embedded mode under the chart's restrictions (read-only root
#      filesystem with a writable data volume at /var/lib/payfac, no capabilities, no new
#      privileges, uid 10001) answering /healthz, /readyz and /metrics, then SIGTERM → exit 0.
# Env: PAYFAC_SKIP_CARGO=1 uses the existing target/release/payfac; PAYFAC_BINARY=path uses that
# binary; PAYFAC_STRIP=0 keeps its debug line tables; PAYFAC_REBUILD_BASE=1 debootstraps the base
# again; PAYFAC_DEBIAN_MIRROR overrides the mirror.
# Ends with "build-image: N passed, M failed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${PAYFAC_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/payfac-tools}"
MIRROR="${PAYFAC_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_IMAGE="localhost/payfac-base:bookworm"
VERSION="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml")"
IMAGE="localhost/payfac:$VERSION"
mkdir -p "$TOOLS"
log() { echo "build-image: $*" >&2; }

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v curl >/dev/null || need+=(curl)
command -v objcopy >/dev/null || need+=(binutils)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 1. The base image, from debootstrap (no registry can serve debian:bookworm-slim here).
# PAYFAC_REBUILD_BASE=1 debootstraps again (today's bookworm security fixes) and re-tags the base.
if [ "${PAYFAC_REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$BASE_IMAGE"; then
  tarball="$TOOLS/payfac-base-bookworm.tar"
  if [ "${PAYFAC_REBUILD_BASE:-0}" = 1 ] || [ ! -s "$tarball" ]; then
    rootfs="$(mktemp -d)"
    log "debootstrap bookworm (minbase + ca-certificates + libpq5) from $MIRROR"
    debootstrap --variant=minbase --include=ca-certificates,libpq5 bookworm "$rootfs" "$MIRROR" >"$TOOLS/debootstrap.log"
    # Caches, docs and package lists are not needed at run time.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
      "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/debootstrap
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf "$rootfs"
  fi
  log "importing $tarball as $BASE_IMAGE"
  previous_base="$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)"
  podman import --change 'CMD ["/bin/bash"]' "$tarball" "$BASE_IMAGE" >/dev/null
fi

# 2. The binary.
binary="${PAYFAC_BINARY:-$ROOT/target/release/payfac}"
if [ -z "${PAYFAC_BINARY:-}" ] && [ "${PAYFAC_SKIP_CARGO:-0}" != 1 ]; then
  log "cargo build --release --locked -p server"
  (cd "$ROOT" && cargo build --release --locked -p server)
fi
[ -x "$binary" ] || { log "no binary at $binary"; exit 1; }

# 3. The image. A context of just the binary: the repository's target/ holds gigabytes.
ctx="$(mktemp -d)"
cleanup() {
  rm -rf "$ctx"
  podman rm -f "payfac-smoke-$$" >/dev/null 2>&1 || true
  podman volume rm -f "payfac-smoke-data-$$" >/dev/null 2>&1 || true
}
trap cleanup EXIT
install -D -m 0755 "$binary" "$ctx/target/release/payfac"
# The release profile keeps line tables (debug = "line-tables-only") for the developers' backtraces:
# ~125 MiB of the ~150 MiB binary. The image drops them and keeps the symbol table, so a panic's
# backtrace still names its functions. PAYFAC_STRIP=0 keeps the binary as cargo built it.
if [ "${PAYFAC_STRIP:-1}" != 0 ]; then
  objcopy --strip-debug "$ctx/target/release/payfac"
fi
previous="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
log "building $IMAGE"
podman build --quiet --format oci --pull=never --isolation chroot \
  --build-arg RUNTIME_IMAGE="$BASE_IMAGE" --build-arg BINARY_SOURCE=context \
  -f "$ROOT/Containerfile" -t "$IMAGE" -t localhost/payfac:latest "$ctx" >/dev/null
# The image this build replaced is now untagged: remove it (podman refuses if a container uses it).
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]; then
  podman rmi "$previous" >/dev/null || true
fi
if [ -n "${previous_base:-}" ] && [ "$previous_base" != "$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE")" ]; then
  podman rmi "$previous_base" >/dev/null 2>&1 || true
fi

# 4. Smoke tests.
# This kind of machine (a VM with hybrid cgroups v1/v2 and without CAP_SYS_RESOURCE) refuses what
# podman does by default: crun rejects hybrid cgroups, and podman raises RLIMIT_NOFILE/NPROC above
# the host's hard limits. runc with limits at or below the host's runs fine, and so does the
# build's `--isolation chroot` above (RUN steps without an OCI runtime).
run=(podman --runtime runc run --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }

out="$("${run[@]}" --rm "$IMAGE" --version 2>&1)" || true
if grep -q "$VERSION" <<<"$out"; then ok "payfac --version: $out"; else bad "payfac --version: $out"; fi

if libs="$("${run[@]}" --rm --entrypoint ldd "$IMAGE" /usr/local/bin/payfac 2>&1)" && ! grep -q 'not found' <<<"$libs"; then
  ok "every shared library of payfac resolves in the image ($(grep -c '=>' <<<"$libs") libraries)"
else
  bad "shared libraries of payfac: $libs"
fi

user="$(podman image inspect --format '{{.Config.User}}' "$IMAGE")"
if [ "$user" = "10001:10001" ]; then ok "runs as $user"; else bad "image user is '$user'"; fi

port=$((20000 + RANDOM % 20000))
# Host networking keeps the test on loopback; the rest mirrors the chart's securityContext. The
# embedded default (no PAYFAC_DATABASE_URL) keeps SQLite and its generated keys in the image's
# PAYFAC_DATA_DIR, /var/lib/payfac: a named volume there (podman copies the image directory's
# owner, uid 10001, into a new volume) is the only writable path besides /tmp.
podman volume create "payfac-smoke-data-$$" >/dev/null
"${run[@]}" -d --name "payfac-smoke-$$" --network host --read-only --tmpfs /tmp:rw,size=64m \
  -v "payfac-smoke-data-$$:/var/lib/payfac" \
  --cap-drop ALL --security-opt no-new-privileges --user 10001:10001 \
  -e PAYFAC_LISTEN="127.0.0.1:$port" -e PAYFAC_SHUTDOWN_GRACE_SECONDS=10 \
  "$IMAGE" serve >/dev/null
healthy=""
for _ in $(seq 60); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then healthy=1; break; fi
  sleep 0.5
done
if [ -n "$healthy" ]; then ok "payfac serve: /healthz answers 200"; else bad "payfac serve: /healthz never answered"; fi
ready=""
for _ in $(seq 60); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.5
done
if [ -n "$ready" ]; then ok "payfac serve: /readyz answers 200"; else bad "payfac serve: /readyz never answered 200"; fi
if curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null | grep -q '^payfac_build_info'; then
  ok "payfac serve: /metrics has payfac_build_info"
else
  bad "payfac serve: /metrics lacks payfac_build_info"
fi
running="$(podman inspect --format '{{.State.Running}}' "payfac-smoke-$$")"
podman stop -t 30 "payfac-smoke-$$" >/dev/null
code="$(podman inspect --format '{{.State.ExitCode}}' "payfac-smoke-$$")"
if [ "$running" != true ]; then bad "payfac serve had exited before SIGTERM (code $code)"
elif [ "$code" = 0 ]; then ok "SIGTERM: payfac serve exited 0"; else bad "SIGTERM: exit code $code"; fi
# PAYFAC_LOG_FORMAT=json is the image's default: every log line (stderr; stdout carries only the
# embedded mode's welcome text) must parse as a JSON object.
logs="$(podman logs "payfac-smoke-$$" 2>&1 >/dev/null)"
if [ -n "$logs" ] && python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin if l.strip()]' <<<"$logs" 2>/dev/null; then
  ok "the $(grep -c . <<<"$logs") log lines are JSON"
else
  bad "log lines are not all JSON: $(head -n 3 <<<"$logs")"
fi
# The SQLite file must have landed on the volume: proof the read-only root was not needed.
if data="$("${run[@]}" --rm -v "payfac-smoke-data-$$:/var/lib/payfac" --entrypoint ls "$IMAGE" -ln /var/lib/payfac 2>&1)" \
  && grep -q 'payfac.db' <<<"$data"; then
  ok "the data volume holds payfac.db ($(grep 'payfac.db$' <<<"$data" | awk '{print "uid " $3 ", " $5 " bytes"}'))"
else
  bad "no payfac.db on the data volume: $data"
fi
if [ "$failed" -gt 0 ]; then podman logs "payfac-smoke-$$" 2>&1 | tail -n 30; fi

size="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
log "$IMAGE: $((size / 1024 / 1024)) MiB"
echo "build-image: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
