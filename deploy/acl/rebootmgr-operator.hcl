# Consul ACL policy for operators using rebootmgr status, check, stop, resume, trigger, cancel,
# disable, enable and unlock.

agent_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
service_prefix "" { policy = "read" }
key_prefix "service/rebootmgr/" { policy = "write" }
