#!/bin/sh
# records argv, one line per call: tag then each arg in [] so quoting is visible
out=/tmp/notify-ka/calls.log
{ printf '%s' "$(basename "$0")"; for a in "$@"; do printf ' [%s]' "$a"; done; printf '\n'; } >> $out
