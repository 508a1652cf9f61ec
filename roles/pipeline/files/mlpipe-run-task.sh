#!/bin/sh
# Installed by the pipeline role; run by mlpipe-task@<name>.service.
#   mlpipe-run-task MLPIPE ARGS_FILE
# Runs MLPIPE with the arguments in ARGS_FILE: one argument per line, taken
# as it is (spaces included); empty lines and lines starting with # are
# skipped. Exits with mlpipe's exit code (0 ok, 1 failure, 2 bad input).
set -u
if [ "$#" -ne 2 ]; then
  echo "usage: $0 MLPIPE ARGS_FILE" >&2
  exit 2
fi
mlpipe=$1
args_file=$2
if [ ! -r "$args_file" ]; then
  echo "$args_file: no arguments file for this task (one mlpipe argument per line); create it" >&2
  exit 2
fi
set --
while IFS= read -r line || [ -n "$line" ]; do
  case $line in
    '' | '#'*) continue ;;
  esac
  set -- "$@" "$line"
done <"$args_file"
if [ "$#" -eq 0 ]; then
  echo "$args_file: no arguments in it (one mlpipe argument per line, e.g. train)" >&2
  exit 2
fi
exec "$mlpipe" "$@"
