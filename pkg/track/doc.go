// Package track evaluates keepalived's vrrp_script, vrrp_track_file and
// vrrp_track_process blocks for checkerd: it decides whether each tracker is
// up (and, for files, the value read) and reports changes. It never touches
// the kernel and needs no privilege; vrrpd folds the results into priorities.
//
// A Set holds the trackers of one configuration snapshot. Apply diffs a new
// snapshot against the running one by kind and name: an unchanged tracker
// keeps its state and schedule, a changed one restarts, a removed one stops.
// Subscribe returns a snapshot of every result plus a channel of changes.
//
// Scripts follow keepalived 2.2.7's vrrp_script_thread and
// vrrp_script_child_thread (vrrp/vrrp_scheduler.c): the first run is at once,
// the next ones every interval from the start of the previous run; a run that
// is still going when the next is due makes that one skipped, never
// overlapped; rise successes make a down script up, fall failures make an up
// script down, and a result of the other kind resets the count; a script
// starts in keepalived's SCRIPT_INIT_STATE_INIT (StateInit: no result yet,
// the first result decides either way) or, with init_fail, down. A script
// that outlives its timeout (the interval if none) is a failure. checkerd
// never forks: a ScriptRunner (the supervisor, over gRPC) runs the script.
//
// Files follow trackers/track_file.c: the first 127 bytes of the file are
// read as a C strtol(buf, NULL, 0) would (decimal, 0x hex, 0 octal, leading
// blanks, trailing garbage ignored); a missing, unreadable or empty file, or
// one with no number, reads as 0; a number outside the 32-bit range is
// logged and ignored (the previous value stays). Like keepalived the
// directory is watched with inotify, so writes, renames over the file and
// deletions are seen at once; a slow periodic re-read covers what inotify
// misses (the directory itself replaced, a permission change on a parent).
//
// Processes follow core/track_process.c's matching (comm, or argv[0] with
// full_command; param_match exact/partial/initial over the arguments;
// quorum..quorum_max; delay_up/delay_down before a change is reported).
// keepalived learns of forks and exits from the netlink process connector,
// which needs CAP_NET_ADMIN; checkerd has no capabilities, so it scans /proc
// instead, every ProcInterval (1 s by default): a process that lives shorter
// than that may go unseen, and a change is seen up to ProcInterval late. One
// scan serves every process tracker; it reads /proc/PID/stat (the comm) for
// comm trackers and /proc/PID/cmdline only for full_command ones.
package track
