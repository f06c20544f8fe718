# Consul ACL policy for the rebootmgr daemon on one node. Replace NODE with the node's name and
# GROUP with its group ("default" when it has none): one policy per node,
#   sed 's/NODE/compute-17/g; s/GROUP/compute/g' rebootmgr-daemon.hcl
# or give every daemon `key_prefix "service/rebootmgr/" { policy = "write" }` instead of the
# key rules below if per-node policies are too much to manage.

# The local agent's node name (/v1/agent/self) and its checks.
agent "NODE" { policy = "read" }
# Node maintenance while rebooting (/v1/agent/maintenance).
node "NODE" { policy = "write" }
# Health of every instance of the services this node's reboot depends on.
node_prefix "" { policy = "read" }
service_prefix "" { policy = "read" }
# The daemon registers itself as the service rebootmgr on its node, with a check that says
# whether it runs and what it waits for (rebootmgr status shows it for every node).
service "rebootmgr" { policy = "write" }
# The Consul event every notification fires.
event "rebootmgr" { policy = "write" }
# The stop flag and every other key: read.
key_prefix "service/rebootmgr/" { policy = "read" }
# The reboot lock record of the default group, and of the node's group: written with
# check-and-set.
key "service/rebootmgr/lock" { policy = "write" }
key "service/rebootmgr/groups/GROUP/lock" { policy = "write" }
# The fleet's record of every holder of any group's lock, written in the same transaction as
# the group's record when a node takes or gives back its place.
key "service/rebootmgr/holders" { policy = "write" }
# The order in which the group's nodes asked for its lock: a node joins it when the lock is
# full, and leaves it when it takes a place.
key "service/rebootmgr/groups/GROUP/queue" { policy = "write" }
# Each node's own entry in that queue, in a key of its own: a node joins by creating its own
# (nodes asking at once never race on the queue), and whoever writes the queue next folds the
# entries in (deletes them: each node may delete the others').
key_prefix "service/rebootmgr/groups/GROUP/asks/" { policy = "write" }
# Where a node waiting in that queue hears that a place opened for it: the node that gives a
# place back tells the next ones, in the transaction that gives it back.
key_prefix "service/rebootmgr/groups/GROUP/turn/" { policy = "write" }
# The fleet's claims of room: a node whose services allow fewer reboots at once than a service
# it shares with others claims the room it waits for there, and nodes with more room leave it
# the next place that opens.
key "service/rebootmgr/claims" { policy = "write" }
# While nodes still run the Python rebootmgr (rebootmgr --python-markers, the default): its
# reboot_in_progress markers, which rebootmgr writes with check-and-set while nodes hold a place
# and deletes with the last, and its session lock keys, which rebootmgr never writes but checks
# in the same transaction (Consul asks write of a check that a key does not exist).
key "service/rebootmgr/reboot_in_progress" { policy = "write" }
key "service/rebootmgr/GROUP_reboot_in_progress" { policy = "write" }
key "service/rebootmgr/lock/.lock" { policy = "write" }
key "service/rebootmgr/GROUP_lock/.lock" { policy = "write" }
# The nodes seen running each service tagged rebootmgr: a member gone from the catalog counts as
# failing until an operator forgets it. Any daemon writes down the members it sees.
key_prefix "service/rebootmgr/members/" { policy = "write" }
# The group's history (appended to after every reboot) and its stop flag (set, never removed by
# the daemon, when a holder misses its deadline or the circuit breaker trips). An operator on
# the node, whose commands pick this token up from /etc/default/rebootmgr, may pull the group's
# brake with it (rebootmgr stop --group GROUP); Consul's write includes delete, so it may also
# resume it. The fleet's stop flag, service/rebootmgr/stop, is not granted: stopping the whole
# fleet takes an operator's token (rebootmgr-operator.hcl).
key "service/rebootmgr/groups/GROUP/history" { policy = "write" }
key "service/rebootmgr/groups/GROUP/stop" { policy = "write" }
# The Python rebootmgr's stop flag of the group, which `rebootmgr stop --group GROUP` (with this
# node's token) sets beside the group's own, so that a node still running the Python rebootmgr
# halts too.
key "service/rebootmgr/GROUP_stop" { policy = "write" }
# This node's reboot request (deleted when done) and disabled mark (set when a task fails).
key_prefix "service/rebootmgr/NODE/" { policy = "write" }
