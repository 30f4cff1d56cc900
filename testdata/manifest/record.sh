#!/usr/bin/env bash
# Records the reference outputs of the `berth config` golden tests from
# docker compose itself (v5.5.0, the reference berth must match).
#
#   testdata/manifest/record.sh [CASE...]      (default: every case)
#   REFCOMPOSE=/path/to/docker-compose testdata/manifest/record.sh
#
# Each case is a directory config/CASE with Compose files, an optional
# `env` file (KEY=VALUE lines: the whole environment of the run) and a
# `cases` file, one invocation per line:
#
#   NAME [@DIR] [<FILE] [sorted] [KEY=VALUE...]: ARGS...
#
# run as `docker compose ARGS` in CASE/DIR (default CASE), stdin from FILE,
# with env plus the KEY=VALUE given. Its stdout goes to CASE/NAME.golden,
# with the case directory's path replaced by @DIR@ so that the files do not
# depend on where the repository is. `sorted` sorts the lines: docker
# compose prints --services, --volumes, --networks and --images in Go map
# order, which is random. `berth` marks an output of berth's own (--hash:
# berth's config hash is not docker compose's): this script skips it, and
# `go test ./cmd/berth -run TestConfig -update` writes it. Tests never run
# docker compose; they compare berth's output with these files.
set -euo pipefail
cd "$(dirname "$0")"
ref=${REFCOMPOSE:-/usr/local/bin/refcompose/docker-compose}
root=$PWD/config

cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  for d in "$root"/*/; do cases+=("$(basename "$d")"); done
fi

for c in "${cases[@]}"; do
  dir=$root/$c
  env=()
  if [ -f "$dir/env" ]; then
    while IFS= read -r line; do
      [[ -z $line || $line == \#* ]] && continue
      env+=("$line")
    done <"$dir/env"
  fi
  while IFS= read -r line; do
    [[ -z $line || $line == \#* ]] && continue
    header=${line%%: *}
    args=${line#*: }
    read -r -a words <<<"$header"
    name=${words[0]}
    cwd=$dir stdin=/dev/null sorted=0 extra=()
    for w in "${words[@]:1}"; do
      case $w in
        @*) cwd=$dir/${w#@} ;;
        \<*) stdin=$dir/${w#<} ;;
        sorted) sorted=1 ;;
        berth) continue 2 ;;
        *=*) extra+=("$w") ;;
        *) echo "$c/cases: bad word $w" >&2; exit 1 ;;
      esac
    done
    read -r -a argv <<<"$args"
    out=$dir/$name.golden
    echo "== $c/$name: docker compose ${argv[*]}"
    (cd "$cwd" && env -i "${env[@]}" "${extra[@]}" "$ref" "${argv[@]}" <"$stdin") >"$out.tmp"
    if [ $sorted = 1 ]; then sort -o "$out.tmp" "$out.tmp"; fi
    # The case directory's path, made portable. sed's | delimiter: paths
    # have no |.
    sed "s|$dir|@DIR@|g" "$out.tmp" >"$out"
    rm -f "$out.tmp"
  done <"$dir/cases"
done
