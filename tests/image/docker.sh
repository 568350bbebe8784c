#!/usr/bin/env bash
# What the image test needs on this machine, idempotently (each step is skipped when done):
#  1. Debian's docker.io and debootstrap;
#  2. dockerd, started in the background if none answers (it stays up: later runs reuse it);
#  3. a stand-in for the AWS Lambda Python base image (public.ecr.aws/lambda/python:3.12),
#     whose registry cannot be reached from here: a Debian bookworm minbase root file system
#     (debootstrap), CPython 3.12 (the Lambda runtime's minor version) in /var/lang as in the
#     AWS image, awslambdaric (the runtime interface client AWS's image runs) in
#     /var/runtime, ENTRYPOINT/WORKDIR/ENV like the AWS image. Imported with `docker import`.
#
# CPython 3.12 is a copy of a relocatable build on this machine (pyenv's: PYTHON312, default
# the newest /root/.pyenv/versions/3.12.*), as Debian bookworm has no 3.12 package. Without
# one the stand-in gets Debian's python3 (3.11) and says so: the test still runs the real
# handler, on another minor version than Lambda's.
set -euo pipefail
cd "$(dirname "$0")/../.."

DOCKER=/usr/bin/docker  # Debian's client: the engine's own version (another docker on PATH may be newer)
BASE_TAG=${STANDIN_BASE_IMAGE:-segjob/lambda-python-standin:3.12}
WORK=build/image-test
log() { printf 'image-test: %s\n' "$*"; }

# 1. packages ------------------------------------------------------------------------------
missing=()
[ -x /usr/sbin/dockerd ] && [ -x "$DOCKER" ] || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. the engine ----------------------------------------------------------------------------
if ! "$DOCKER" info >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/segjob-dockerd.log)"
  nohup /usr/sbin/dockerd >/var/log/segjob-dockerd.log 2>&1 &
  for _ in $(seq 60); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 1
  done
  "$DOCKER" info >/dev/null 2>&1 || { tail -20 /var/log/segjob-dockerd.log; exit 1; }
fi

# 3. the stand-in base image ---------------------------------------------------------------
if "$DOCKER" image inspect "$BASE_TAG" >/dev/null 2>&1; then
  log "stand-in base $BASE_TAG present"
  exit 0
fi
started=$(date +%s)
python312=${PYTHON312:-$(ls -d /root/.pyenv/versions/3.12.* 2>/dev/null | sort -V | tail -1 || true)}
rootfs=$WORK/rootfs
rm -rf "$rootfs" && mkdir -p "$rootfs"
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
libs=libssl3,libsqlite3-0,libffi8,liblzma5,libbz2-1.0,zlib1g,libuuid1
[ -x "$python312/bin/python3.12" ] || libs+=,python3,python3-pip
log "debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase --include="$libs" bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -20 "$WORK/debootstrap.log"; exit 1; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

mkdir -p "$rootfs/var/lang" "$rootfs/var/runtime" "$rootfs/var/task"
if [ -x "$python312/bin/python3.12" ]; then
  log "CPython from $python312"
  tar -C "$python312" \
    --exclude=include --exclude=share --exclude='lib/pkgconfig' --exclude='lib/python3.12/test' \
    --exclude='lib/python3.12/idlelib' --exclude='lib/python3.12/tkinter' \
    --exclude='lib/python3.12/turtledemo' --exclude='lib/python3.12/config-3.12-*' \
    --exclude='lib/python3.12/site-packages/*' -c . | tar -C "$rootfs/var/lang" -x
  "$python312/bin/python3.12" -m pip install -q --no-compile --target "$rootfs/var/lang/lib/python3.12/site-packages" pip
  ln -sf python3.12 "$rootfs/var/lang/bin/python"
  ln -sf python3.12 "$rootfs/var/lang/bin/python3"
  rm -f "$rootfs"/var/lang/bin/pip*  # their #! names the build's own prefix
  printf '#!/bin/sh\nexec /var/lang/bin/python3.12 -m pip "$@"\n' >"$rootfs/var/lang/bin/pip"
  chmod 755 "$rootfs/var/lang/bin/pip"
  runtime_python=$python312/bin/python3.12
  execution_env=AWS_Lambda_python3.12
else
  log "no CPython 3.12 build found: the stand-in runs Debian's python3 (3.11), not Lambda's 3.12"
  mkdir -p "$rootfs/var/lang/bin"
  ln -sf /usr/bin/python3 "$rootfs/var/lang/bin/python"
  ln -sf /usr/bin/python3 "$rootfs/var/lang/bin/python3"
  ln -sf /usr/bin/pip3 "$rootfs/var/lang/bin/pip"
  runtime_python=python3.11
  execution_env=AWS_Lambda_python3.11
fi
# awslambdaric for the stand-in's Python, installed from here (the host trusts this network's
# CA; nothing of it goes into an image).
"$runtime_python" -m pip install -q --target "$rootfs/var/runtime" \
  --python-version "$("$runtime_python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")' 2>/dev/null || echo 3.11)" \
  --only-binary=:all: awslambdaric==4.2.2
cat >"$rootfs/lambda-entrypoint.sh" <<'EOF'
#!/bin/sh
# Like the AWS base image's entry point, without its emulator: the Runtime API is given.
exec /var/lang/bin/python -m awslambdaric "$@"
EOF
chmod 755 "$rootfs/lambda-entrypoint.sh"

log "importing $BASE_TAG"
tar -C "$rootfs" -c . | "$DOCKER" import \
  --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
  --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
  --change 'ENV LANG=en_US.UTF-8' \
  --change 'ENV TZ=:/etc/localtime' \
  --change 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin' \
  --change 'ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib' \
  --change 'ENV PYTHONPATH=/var/runtime' \
  --change "ENV AWS_EXECUTION_ENV=$execution_env" \
  --change 'WORKDIR /var/task' \
  --change 'ENTRYPOINT ["/lambda-entrypoint.sh"]' \
  - "$BASE_TAG" >/dev/null
rm -rf "$rootfs"
log "stand-in base $BASE_TAG built in $(($(date +%s) - started)) s"
