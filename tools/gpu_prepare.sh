#!/usr/bin/env bash
# Prepares .gpu/ for tools/gpu_check.sh, here, on the Debian 12 machine the project builds on.
# The GPU machine has python3 with torch, CMake, ninja and nvcc, but none of the Debian libraries
# the build needs and no network; this puts what it lacks where `carry: [".gpu"]` takes it:
#
#   .gpu/debs/      the .deb files of every Debian library the CMake build needs (the -dev
#                   packages, the runtime libraries they depend on, pkgconf), at the versions
#                   installed here; gpu_check.sh unpacks them with dpkg -x into a private prefix
#   .gpu/fixtures/  a copy of build/test_fixtures (tests/reference/make_fixtures.sh's output),
#                   since the fixture step needs .venv's transformers 4.x and FlagEmbedding
#   .gpu/whl/       wheels of transformers, tokenizers, huggingface_hub and sentencepiece at
#                   requirements.lock's versions for Python 3.12, in case tools/export.py fails
#                   with the GPU machine's transformers 5.x (--no-wheels leaves them out)
#   .gpu/MANIFEST   what was put there, from which commit
#
# Usage: tools/gpu_prepare.sh [--fixtures DIR] [--no-wheels]   (DIR: build/test_fixtures)
# Idempotent: .gpu/debs and .gpu/fixtures are made afresh on each run. Needs apt-get's package
# lists (apt-get update) and network access to Debian's mirrors; no root.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

FIXTURES=build/test_fixtures
WHEELS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --fixtures) FIXTURES=$2; shift 2 ;;
    --no-wheels) WHEELS=0; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "gpu_prepare: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf '[gpu_prepare] %s\n' "$*" >&2; }
die() { printf '[gpu_prepare] error: %s\n' "$*" >&2; exit 1; }

# What CMakeLists.txt finds (tools/setup.sh installs the same -dev packages), and pkg-config for
# pkg_check_modules. Their runtime libraries are added below from apt-cache's dependencies.
DEV_PACKAGES=(
  libyaml-cpp-dev libsentencepiece-dev libgtest-dev libgmock-dev nlohmann-json3-dev
  libcli11-dev libspdlog-dev libfmt-dev libutf8proc-dev libonig-dev libssl-dev libcpp-httplib-dev
  pkg-config pkgconf pkgconf-bin
)
# The exporter's Python packages at requirements.lock's versions (.gpu/whl; see below).
WHEEL_PACKAGES=(transformers tokenizers huggingface_hub sentencepiece)
# Dependencies left out: the C and C++ runtime every machine with a compiler has, googletest
# (the sources; libgtest-dev holds the built libraries) and catch2 (spdlog's tests).
SKIP_PACKAGES=" libc6 libgcc-s1 libstdc++6 googletest catch2 debconf dpkg "

# 64 MiB is the limit on what travels (tracked files, untracked files git does not ignore, and
# the carried paths together); stay a little under it.
LIMIT_BYTES=$((64 << 20))
WARN_BYTES=$((56 << 20))

command -v apt-get >/dev/null && command -v apt-cache >/dev/null && command -v dpkg-deb >/dev/null ||
  die "needs apt-get, apt-cache and dpkg-deb (run it on the Debian 12 build machine)"

# --- .gpu must never be committed, and must not travel unless carried --------------------------
if ! git check-ignore -q .gpu/probe 2>/dev/null; then
  exclude=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")"
  echo "/.gpu/" >> "$exclude"
  log "added /.gpu/ to $exclude"
fi
for path in build-gpu gpu-out; do
  git check-ignore -q "$path/probe" 2>/dev/null ||
    log "warning: $path/ is not ignored by git: it would travel with the working tree"
done

# --- the package set: the -dev packages and, transitively, what they depend on -----------------
depends_of() {
  # Direct Depends and PreDepends of one package; virtual ones (<name>) are reported and skipped.
  apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
    --no-enhances "$1" | sed -n 's/^ *\(Pre\)\{0,1\}Depends: *//p' | while read -r dep; do
      case "$dep" in
        "<"*) log "warning: $1 depends on the virtual package $dep: left out" ;;
        *) echo "${dep%%:*}" ;;
      esac
    done
}

declare -A wanted=()
queue=("${DEV_PACKAGES[@]}")
while [ ${#queue[@]} -gt 0 ]; do
  package=${queue[0]}
  queue=("${queue[@]:1}")
  [ -n "${wanted[$package]:-}" ] && continue
  case "$SKIP_PACKAGES" in *" $package "*) continue ;; esac
  apt-cache show "$package" >/dev/null 2>&1 ||
    die "apt-cache knows no package '$package' (run apt-get update?)"
  wanted[$package]=1
  mapfile -t deps < <(depends_of "$package")
  queue+=("${deps[@]}")
done

# The version installed here when there is one (the build here was tested against it), else the
# candidate.
specs=()
for package in $(printf '%s\n' "${!wanted[@]}" | sort); do
  version=$(dpkg-query -W -f='${Status} ${Version}' "$package" 2>/dev/null |
    sed -n 's/^install ok installed //p')
  candidate=$(apt-cache policy "$package" | sed -n 's/^ *Candidate: *//p')
  if [ -z "$version" ]; then
    version=$candidate
    log "warning: $package is not installed here; taking the candidate $version"
  elif ! apt-get download --print-uris "$package=$version" >/dev/null 2>&1; then
    log "warning: $package $version (installed here) is no longer on the mirrors;" \
        "taking the candidate $candidate"
    version=$candidate
  fi
  specs+=("$package=$version")
done

# --- download -----------------------------------------------------------------------------------
mkdir -p .gpu
rm -rf .gpu/debs.partial
mkdir -p .gpu/debs.partial
log "downloading ${#specs[@]} packages: ${specs[*]}"
(cd .gpu/debs.partial && timeout 600 apt-get download -q -o APT::Sandbox::User=root "${specs[@]}") ||
  die "apt-get download failed (network? package lists out of date: apt-get update)"
for deb in .gpu/debs.partial/*.deb; do
  dpkg-deb --info "$deb" >/dev/null || die "$deb is not a valid .deb"
  # An epoch is saved as '%3a' in the name: plain names travel and print better.
  case "$deb" in *%3a*) mv "$deb" "${deb//%3a/_}" ;; esac
done
count=$(find .gpu/debs.partial -name '*.deb' | wc -l)
[ "$count" -eq "${#specs[@]}" ] || die "expected ${#specs[@]} .deb files, got $count"
rm -rf .gpu/debs
mv .gpu/debs.partial .gpu/debs

# --- wheels: the exporter's pinned Python packages, a fallback for tools/export.py there --------
# The GPU machine's python3 has transformers 5.x, tokenizers 0.23 and huggingface_hub 1.x; if
# tools/export.py fails with those, gpu_check.sh installs these (requirements.lock's versions)
# into a folder of its own and puts it first on PYTHONPATH for the export only.
if [ "$WHEELS" = 1 ]; then
  pip_python=${PIP_PYTHON:-.venv/bin/python}
  [ -x "$pip_python" ] || pip_python=python3
  specs_whl=()
  for name in "${WHEEL_PACKAGES[@]}"; do
    pin=$(grep -i -E "^${name//_/[-_]}==" requirements.lock | head -1)
    [ -n "$pin" ] || die "$name is not pinned in requirements.lock"
    specs_whl+=("$pin")
  done
  rm -rf .gpu/whl.partial
  mkdir -p .gpu/whl.partial
  log "downloading wheels for Python 3.12 (x86-64): ${specs_whl[*]}"
  timeout 600 "$pip_python" -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d .gpu/whl.partial "${specs_whl[@]}" || die "pip download failed"
  rm -rf .gpu/whl
  mv .gpu/whl.partial .gpu/whl
else
  rm -rf .gpu/whl
fi

# --- fixtures -----------------------------------------------------------------------------------
[ -d "$FIXTURES" ] && [ -f "$FIXTURES/xlmr_tiny/engine.json" ] ||
  die "no fixtures in $FIXTURES: run tools/test.sh (its make_fixtures step), or" \
      "tests/reference/make_fixtures.sh $FIXTURES"
# Fixtures made before the last change to what makes them are stale: say so (the copy is made
# all the same; the tests on the GPU machine would then compare against the old outputs).
newest_fixture=$(find "$FIXTURES" -type f -printf '%T@\n' | sort -n | tail -1)
stale=()
while IFS= read -r source; do
  [ "$(stat -c %Y "$source")" -gt "${newest_fixture%.*}" ] && stale+=("$source")
done < <(git ls-files tests/reference tools/export.py 'models/*.py' 'models/**/*.py')
[ ${#stale[@]} -eq 0 ] ||
  log "warning: changed after the fixtures were made, so $FIXTURES may be stale: ${stale[*]}" \
      "(tests/reference/make_fixtures.sh $FIXTURES remakes them)"
rm -rf .gpu/fixtures
cp -a "$FIXTURES" .gpu/fixtures
# Nothing the tests do not read: checkpoints' caches and Python byte code.
find .gpu/fixtures -name '__pycache__' -prune -exec rm -rf {} +

# --- manifest and sizes ---------------------------------------------------------------------------
{
  echo "made by tools/gpu_prepare.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "fixtures from $FIXTURES"
  echo "packages:"
  printf '  %s\n' "${specs[@]}"
  if [ -d .gpu/whl ]; then
    echo "wheels:"
    (cd .gpu/whl && ls -1 *.whl | sed 's/^/  /')
  fi
} > .gpu/MANIFEST

size_of() { du -sb "$@" | awk '{sum += $1} END {print sum + 0}'; }
debs_bytes=$(size_of .gpu/debs)
fixtures_bytes=$(size_of .gpu/fixtures)
gpu_bytes=$(size_of .gpu)
# What travels besides .gpu: tracked files and untracked files that git does not ignore.
tree_bytes=$( (git ls-files -z --cached; git ls-files -z --others --exclude-standard) |
  sort -zu | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{sum += $1} END {print sum + 0}')
total=$((gpu_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
whl_bytes=0
[ -d .gpu/whl ] && whl_bytes=$(size_of .gpu/whl)
log "debs $(mib "$debs_bytes") (${#specs[@]} files), wheels $(mib "$whl_bytes")," \
    "fixtures $(mib "$fixtures_bytes")"
log ".gpu total $(mib "$gpu_bytes"); working tree $(mib "$tree_bytes");" \
    "what travels with carry [\".gpu\"]: $(mib "$total") of 64 MiB"
if [ "$total" -gt "$LIMIT_BYTES" ]; then
  die "over the 64 MiB that may travel"
elif [ "$total" -gt "$WARN_BYTES" ]; then
  log "warning: close to the 64 MiB limit"
fi
echo "$ROOT/.gpu $(mib "$gpu_bytes")"
