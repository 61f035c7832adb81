#!/usr/bin/env bash
# vendor/<crate> is the crate as published on crates.io plus patches/<crate>-<version>.patch
# (patches/README.md). This script makes it so, or checks that it is.
#
#   bash patches/vendor.sh                rebuild every vendor/<crate>
#   bash patches/vendor.sh --check        rebuild into a temporary folder and compare with vendor/
#                                         (content and executable bit); non-zero if they differ
#   bash patches/vendor.sh --diff CRATE   write patches/CRATE-VERSION.patch from vendor/CRATE
#   bash patches/vendor.sh --apply CRATE  upgrading: vendor/CRATE becomes the published crate with
#                                         the patch applied as far as it goes (rejects in *.rej)
#
# Downloads go to ${XDG_CACHE_HOME:-$HOME/.cache}/hafrm/crates, checked against patches/SHA256SUMS.
# Every rebuilt file gets one fixed mtime: cargo judges a path dependency fresh by its files'
# mtimes, and a fresh clone's would make it compile the patched crates (and Burn) again.
set -euo pipefail
export LC_ALL=C

# Each crate: name, version, and the published files it keeps (the rest of the .crate is dropped).
CRATES=(
  "burn-cubecl-fusion 0.22.1 Cargo.toml README.md src"
  "burn-flex 0.22.1 Cargo.toml README.md src"
  "cubecl-cuda 0.11.3 Cargo.toml README.md build.rs src"
  "cubecl-std 0.11.3 Cargo.toml README.md src"
  "cubek-matmul 0.3.1 Cargo.toml README.md src"
  "pliron 0.19.0 Cargo.toml README.md LICENSE.md NOTICE src"
)
MTIME='2026-01-01 00:00:00 UTC'

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATCHES=$ROOT/patches
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/hafrm/crates
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

die() { echo "patches/vendor.sh: $*" >&2; exit 1; }

# lookup CRATE: sets VERSION and KEEP (array) from CRATES.
lookup() {
  local line name
  for line in "${CRATES[@]}"; do
    read -r name VERSION KEEP <<<"$line"
    if [[ $name == "$1" ]]; then
      read -ra KEEP <<<"$KEEP"
      return
    fi
  done
  die "no crate $1 in CRATES (patches/vendor.sh)"
}

# crate_file NAME VERSION: the verified .crate in the cache, downloaded if needed.
crate_file() {
  local name=$1 version=$2 file=$1-$2.crate want got index
  want=$(awk -v f="$file" '$2 == f { print $1 }' "$PATCHES/SHA256SUMS")
  if [[ -f $CACHE/$file ]] && [[ -n $want ]] &&
    [[ $(sha256sum "$CACHE/$file" | cut -d' ' -f1) == "$want" ]]; then
    echo "$CACHE/$file"
    return
  fi
  mkdir -p "$CACHE"
  echo "downloading $file" >&2
  curl -sSfL -o "$CACHE/$file.part" "https://static.crates.io/crates/$name/$file" ||
    die "could not download $file from crates.io"
  got=$(sha256sum "$CACHE/$file.part" | cut -d' ' -f1)
  if [[ -z $want ]]; then
    case ${#name} in
      1 | 2) index=${#name}/$name ;;
      3) index=3/${name:0:1}/$name ;;
      *) index=${name:0:2}/${name:2:2}/$name ;;
    esac
    rm -f "$CACHE/$file.part"
    die "patches/SHA256SUMS has no sha256 for $file. The download's is $got;" \
      "compare it with the \"cksum\" of version $version at https://index.crates.io/$index" \
      "(what cargo checks), then add the line: $got  $file"
  fi
  if [[ $got != "$want" ]]; then
    rm -f "$CACHE/$file.part"
    die "$file from crates.io has sha256 $got, patches/SHA256SUMS says $want"
  fi
  mv "$CACHE/$file.part" "$CACHE/$file"
  echo "$CACHE/$file"
}

# published CRATE DEST: the kept files of the published crate in DEST (a new folder).
published() {
  local name=$1 dest=$2 crate path
  lookup "$name"
  crate=$(crate_file "$name" "$VERSION")
  mkdir -p "$TMP/extract" "$dest"
  rm -rf "${TMP:?}/extract/$name-$VERSION"
  tar -xzf "$crate" -C "$TMP/extract" --no-same-owner
  for path in "${KEEP[@]}"; do
    [[ -e $TMP/extract/$name-$VERSION/$path ]] || die "$name $VERSION has no $path to keep"
    mv "$TMP/extract/$name-$VERSION/$path" "$dest/"
  done
}

# build CRATE DEST: the published crate plus its patch in DEST, every file at MTIME.
build() {
  local name=$1 dest=$2 out
  published "$name" "$dest"
  [[ -f $PATCHES/$name-$VERSION.patch ]] || die "no patches/$name-$VERSION.patch"
  if ! out=$(patch -d "$dest" -p1 -f --fuzz=0 --no-backup-if-mismatch -r - \
    <"$PATCHES/$name-$VERSION.patch" 2>&1); then
    echo "$out" >&2
    die "patches/$name-$VERSION.patch does not apply to $name $VERSION as published"
  fi
  find "$dest" -exec touch -h -d "$MTIME" {} +
}

# sync_tree SRC DEST: make DEST's files SRC's, writing only those that differ (a build may be
# reading them), then give every file and folder of DEST the fixed mtime.
sync_tree() {
  local src=$1 dest=$2 f
  mkdir -p "$dest"
  (cd "$dest" && find . ! -type d) | while IFS= read -r f; do
    [[ -f $src/$f ]] || rm -f -- "$dest/$f"
  done
  (cd "$src" && find . -type f) | while IFS= read -r f; do
    if ! cmp -s -- "$src/$f" "$dest/$f"; then
      mkdir -p -- "$(dirname -- "$dest/$f")"
      cp -- "$src/$f" "$dest/$f"
    fi
    if [[ -x $src/$f ]]; then chmod +x -- "$dest/$f"
    elif [[ -x $dest/$f ]]; then chmod -x -- "$dest/$f"; fi
  done
  find "$dest" -mindepth 1 -depth -type d -empty -delete
  find "$dest" -exec touch -h -d "$MTIME" {} +
}

# executables DIR: the files of DIR with the executable bit, relative to DIR.
executables() { (cd "$1" && find . -type f -perm -u+x | sort); }

names() { local line; for line in "${CRATES[@]}"; do echo "${line%% *}"; done; }

case ${1:-} in
  "")
    for name in $(names); do
      build "$name" "$TMP/vendor/$name"
      sync_tree "$TMP/vendor/$name" "$ROOT/vendor/$name"
      echo "vendor/$name: $name $VERSION + patches/$name-$VERSION.patch"
    done
    for dir in "$ROOT"/vendor/*; do
      name=${dir##*/}
      names | grep -qxF "$name" || echo "warning: vendor/$name is not in patches/vendor.sh's CRATES" >&2
    done
    ;;
  --check)
    for name in $(names); do build "$name" "$TMP/vendor/$name"; done
    if ! out=$(diff -rq "$TMP/vendor" "$ROOT/vendor" 2>&1); then
      echo "vendor/ is not the published crates plus patches/*.patch:" >&2
      sed "s|$TMP/vendor|rebuilt vendor|g; s|$ROOT/||g; s/^/  /" <<<"$out" >&2
      echo "Record a change to vendor/CRATE with: bash patches/vendor.sh --diff CRATE;" \
        "or undo it with: bash patches/vendor.sh" >&2
      exit 1
    fi
    if ! cmp -s <(executables "$TMP/vendor") <(executables "$ROOT/vendor"); then
      echo "vendor/ is not the published crates plus patches/*.patch in the executable bit:" >&2
      comm -3 <(executables "$TMP/vendor") <(executables "$ROOT/vendor") |
        sed 's|^\t\./|  executable in vendor/ only: vendor/|; s|^\./|  executable as published, not in vendor/: vendor/|' >&2
      echo "Undo it with: bash patches/vendor.sh" >&2
      exit 1
    fi
    echo "vendor/ is the published crates plus patches/*.patch ($(names | tr '\n' ' '| sed 's/ $//'))"
    ;;
  --diff)
    [[ -n ${2:-} ]] || die "usage: bash patches/vendor.sh --diff CRATE"
    name=$2
    [[ -d $ROOT/vendor/$name ]] || die "no vendor/$name"
    left=$(cd "$ROOT/vendor" && find "$name" -name '*.rej' -o -name '*.orig')
    [[ -z $left ]] || die "vendor/$name has rejects or backups left; fix them and delete:" $left
    published "$name" "$TMP/a"
    cp -r "$ROOT/vendor/$name" "$TMP/b"
    # diff's exit status is 1 when the trees differ, 2 on trouble.
    (cd "$TMP" && diff -ruN a b >"$TMP/patch") || [[ $? == 1 ]] || die "diff failed"
    # Drop the file times from the "---" and "+++" lines that follow each "diff" line.
    awk '/^diff / { head = 2; print; next }
         head > 0 { head--; sub(/\t.*/, ""); print; next }
         /^\+/ { added++ } /^-/ { removed++ } { print }
         END { printf "%d lines added, %d removed\n", added, removed > "/dev/stderr" }' \
      "$TMP/patch" >"$PATCHES/$name-$VERSION.patch"
    echo "wrote patches/$name-$VERSION.patch" >&2
    for old in "$PATCHES/$name"-[0-9]*.patch; do
      if [[ $old != "$PATCHES/$name-$VERSION.patch" ]]; then
        rm -f -- "$old"
        echo "removed ${old#"$ROOT/"}" >&2
      fi
    done
    ;;
  --apply)
    [[ -n ${2:-} ]] || die "usage: bash patches/vendor.sh --apply CRATE"
    name=$2
    published "$name" "$TMP/new"
    # The crate's patch, whichever version it was made for (the newest if several).
    patchfile=$(ls "$PATCHES/$name"-[0-9]*.patch 2>/dev/null | sort -V | tail -n1)
    [[ -n $patchfile ]] || die "no patches/$name-VERSION.patch"
    echo "applying ${patchfile#"$ROOT/"} to $name $VERSION as published" >&2
    status=0
    patch -d "$TMP/new" -p1 -f --no-backup-if-mismatch <"$patchfile" || status=$?
    rm -rf "${ROOT:?}/vendor/$name"
    cp -r "$TMP/new" "$ROOT/vendor/$name"
    if [[ $status != 0 ]]; then
      echo "Fix what the patch could not apply (vendor/$name/**/*.rej), delete the .rej files," \
        "then: bash patches/vendor.sh --diff $name" >&2
      exit 1
    fi
    echo "vendor/$name: $name $VERSION + ${patchfile#"$ROOT/"}; now bash patches/vendor.sh --diff $name"
    ;;
  *)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
