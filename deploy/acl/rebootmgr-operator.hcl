# Consul ACL policy for operators using rebootmgr status, check, stop, resume, trigger, cancel,
# disable, enable and unlock. The fleet's stop flag (service/rebootmgr/stop) is written only with
# it: a node's daemon token may stop its own group, not the fleet. Give it in the operator's
# environment (CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE), which wins over the daemon's token
# that /etc/default/rebootmgr names.

agent_prefix "" { policy = "read" }
# Every node read; and written only for what rebootmgr unlock N --end-maintenance does, run on N
# after a reboot that did not happen: end the maintenance rebootmgr started there (Consul asks
# node:write of /v1/agent/maintenance on the node's own agent).
node_prefix "" { policy = "write" }
service_prefix "" { policy = "read" }
key_prefix "service/rebootmgr/" { policy = "write" }
# The Consul event stop, resume and unlock fire, as every notification does.
event "rebootmgr" { policy = "write" }
