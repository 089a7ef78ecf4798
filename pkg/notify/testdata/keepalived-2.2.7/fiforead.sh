#!/bin/sh
echo "fifo-script-args: $*" >> /tmp/notify-ka/fifo-script.log
while read -r line; do printf '%s\n' "$line" >> /tmp/notify-ka/fifo.log; done < "$1"
