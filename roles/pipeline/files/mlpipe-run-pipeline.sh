#!/bin/sh
# Installed by the pipeline role; run by mlpipe-pipeline@<name>.service.
#   mlpipe-run-pipeline MLPIPE PIPELINE_FILE STATE_DIR
# Runs `MLPIPE pipeline run PIPELINE_FILE --executor EXECUTOR --json`, EXECUTOR
# being $MLPIPE_EXECUTOR (the definition's executor, from its <name>.env: local,
# daliuge or slurm; unset or empty: local). The step
# lines and errors go to stderr (the journal); the one JSON summary mlpipe
# prints becomes STATE_DIR/last-run.json, replaced whole. A run that printed
# no summary (the pipeline file does not load or validate) removes
# last-run.json, so it never describes an earlier run. Exits with mlpipe's
# exit code: 0 ok, 1 a step failed, 2 bad input.
set -u
if [ "$#" -ne 3 ]; then
  echo "usage: $0 MLPIPE PIPELINE_FILE STATE_DIR" >&2
  exit 2
fi
mlpipe=$1
file=$2
state=$3
executor=${MLPIPE_EXECUTOR:-local}
case $executor in
  local | daliuge | slurm) ;;
  *)
    echo "MLPIPE_EXECUTOR=$executor (the executor of pipeline_definitions, in the pipeline's .env)" \
      "is not local, daliuge or slurm" >&2
    exit 2
    ;;
esac
mkdir -p "$state" || exit 1
tmp="$state/.last-run.json.$$"
echo "running $file with the $executor executor" >&2
"$mlpipe" pipeline run "$file" --executor "$executor" --json >"$tmp"
rc=$?
if [ -s "$tmp" ]; then
  mv -f "$tmp" "$state/last-run.json" || rc=1
  echo "summary written to $state/last-run.json (exit $rc)" >&2
else
  rm -f "$tmp" "$state/last-run.json"
  echo "no summary: $file did not run (exit $rc; the reason is above)" >&2
fi
exit "$rc"
