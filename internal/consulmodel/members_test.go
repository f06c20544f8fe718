package consulmodel_test

import (
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"
)

// scenarioMembers reads the agent's members (what the Python rebootmgr's cluster check reads)
// as a member's agent is killed and as it leaves: alive, failed, left. Each read waits on the
// member's health, which the servers change once gossip has judged the member.
func scenarioMembers(b *backend) {
	b.client("n2")
	members := func(q *api.QueryOptions) (string, uint64, error) {
		_, meta, err := b.client("n1").Health().Node("n2", q)
		if err != nil {
			return "", 0, err
		}
		ms, err := b.client("n1").Agent().Members(false)
		if err != nil {
			return "", 0, err
		}
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%s=%d", m.Name, m.Status))
		}
		return strings.Join(out, " "), meta.LastIndex, nil
	}
	b.await("members", members)
	b.fail("n2")
	b.await("members after a failure", members)
	b.restart("n2")
	b.leave("n2")
	b.await("members after a leave", members)
}
