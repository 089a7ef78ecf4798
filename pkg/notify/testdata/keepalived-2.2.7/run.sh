#!/bin/bash
set -u
D=/tmp/notify-ka; NS=notify-ka
cleanup() {
  [ -f $D/ka.pid ] && kill $(cat $D/ka.pid) 2>/dev/null
  [ -n "${SMTPPID:-}" ] && kill $SMTPPID 2>/dev/null
  sleep 1; ip netns del $NS 2>/dev/null
}
trap cleanup EXIT
rm -f $D/calls.log $D/fifo.log $D/fifo-script.log $D/smtp.log $D/fifo $D/ka.log
ip netns add $NS
ip -n $NS link set lo up
ip -n $NS link add nka0 type veth peer name nka1; ip -n $NS link set nka1 up
ip -n $NS link set nka0 up
ip -n $NS addr add 198.51.100.1/24 dev nka0
ip netns exec $NS python3 $D/smtpd.py & SMTPPID=$!
cp $D/ka.conf $D/run.conf
ip netns exec $NS keepalived -n -l -D -P -f $D/run.conf -p $D/ka.pid -r $D/vrrp.pid -c $D/chk.pid > $D/ka.log 2>&1 &
sleep 7; echo "== reload (VI_3, VI_4 removed)" >> $D/calls.log
cp $D/ka2.conf $D/run.conf; kill -HUP $(cat $D/ka.pid); sleep 3
echo "== link down" >> $D/calls.log
ip -n $NS link set nka0 down; sleep 3
echo "== link up" >> $D/calls.log
ip -n $NS link set nka0 up; sleep 7
echo "== SIGTERM" >> $D/calls.log
kill $(cat $D/ka.pid); sleep 3
