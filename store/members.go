package store

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// MembersPrefix holds, for each service tagged rebootmgr, a key for every node seen running it:
// members/<service>/<node>. A member with no instance in the catalog counts as failing until it
// is forgotten.
func (k Keys) MembersPrefix() string { return k.Prefix + "/members/" }

// Member is the key that remembers node running service. Consul takes node names that could
// not be a key's segment as they are (a space, a '/', ".."): such a name is written escaped
// (see memberSegment), so that every node Consul knows can be remembered.
func (k Keys) Member(service, node string) string {
	return k.MembersPrefix() + service + "/" + memberSegment(node)
}

// memberSegment is node as a key segment: itself when it is a valid node name, else every byte
// but letters, digits, '-' and '_' as %XX (dots too, so that no segment is "." or "..").
func memberSegment(node string) string {
	if ValidNode(node) == nil {
		return node
	}
	var b strings.Builder
	for i := 0; i < len(node); i++ {
		c := node[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// memberCacheTTL is how long the members a store read are trusted by Remember before it reads
// them again (a forget by another process is seen by then, or at the next health read).
const memberCacheTTL = time.Minute

// Members reads the nodes remembered running service, in one consistent request.
func (c *Consul) Members(ctx context.Context, service string) ([]string, error) {
	if err := ValidService(service); err != nil {
		return nil, err
	}
	prefix := c.Keys.MembersPrefix() + service + "/"
	q := c.Options
	q.RequireConsistent, q.AllowStale = true, false
	keys, meta, err := c.Client.KV().Keys(prefix, "", q.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read members of %s (%s): %w", service, prefix, err)
	}
	if meta.ResultsFilteredByACLs {
		return nil, fmt.Errorf("read members of %s (%s): %w", service, prefix, ErrFiltered)
	}
	nodes := make([]string, 0, len(keys))
	for _, k := range keys {
		seg := strings.TrimPrefix(k, prefix)
		if seg == "" || strings.Contains(seg, "/") {
			continue
		}
		node, err := url.PathUnescape(seg)
		if err != nil {
			return nil, fmt.Errorf("read members of %s: key %s: %w", service, k, err)
		}
		nodes = append(nodes, node)
	}
	c.mu.Lock()
	if c.known == nil {
		c.known = map[string]knownMembers{}
	}
	c.known[service] = knownMembers{nodes: setOf(nodes), at: time.Now()}
	c.mu.Unlock()
	return nodes, nil
}

// knownMembers are the members of a service as the store last read or wrote them.
type knownMembers struct {
	nodes map[string]bool
	at    time.Time
}

func setOf(nodes []string) map[string]bool {
	out := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		out[n] = true
	}
	return out
}

// Remember writes down nodes as members of service (a key that exists is left as it is). The
// members the store read within memberCacheTTL are not written again; older than that, they are
// read again first, so that a node forgotten meanwhile and seen again is remembered again.
func (c *Consul) Remember(ctx context.Context, service string, nodes []string) error {
	if err := ValidService(service); err != nil {
		return err
	}
	c.mu.Lock()
	cached, ok := c.known[service]
	c.mu.Unlock()
	known := cached.nodes
	if !ok || time.Since(cached.at) > memberCacheTTL {
		members, err := c.Members(ctx, service)
		if err != nil {
			return err
		}
		known = setOf(members)
	}
	var written []string
	for _, node := range nodes {
		if known[node] || node == "" {
			continue
		}
		key := c.Keys.Member(service, node)
		value := "first seen " + time.Now().UTC().Format(time.RFC3339)
		if _, _, err := c.Client.KV().CAS(&api.KVPair{Key: key, Value: []byte(value)}, c.write(ctx)); err != nil {
			return fmt.Errorf("remember %s as a member of %s (%s): %w", node, service, key, err)
		}
		written = append(written, node)
	}
	if len(written) > 0 {
		c.mu.Lock()
		if k, ok := c.known[service]; ok {
			for _, n := range written {
				k.nodes[n] = true
			}
		}
		c.mu.Unlock()
	}
	return nil
}

// Forget removes node from the members of service, or of every service when service is "";
// it returns the services it was forgotten from.
func (c *Consul) Forget(ctx context.Context, node, service string) ([]string, error) {
	if node == "" {
		return nil, fmt.Errorf("empty node name")
	}
	services := []string{service}
	if service == "" {
		keys, _, err := c.Client.KV().Keys(c.Keys.MembersPrefix(), "", c.query(ctx))
		if err != nil {
			return nil, fmt.Errorf("read members (%s): %w", c.Keys.MembersPrefix(), err)
		}
		services = nil
		for _, k := range keys {
			svc, seg, ok := strings.Cut(strings.TrimPrefix(k, c.Keys.MembersPrefix()), "/")
			if ok && seg == memberSegment(node) {
				services = append(services, svc)
			}
		}
	} else if err := ValidService(service); err != nil {
		return nil, err
	}
	var forgotten []string
	for _, svc := range services {
		f, err := c.Remove(ctx, c.Keys.Member(svc, node))
		if err != nil {
			return forgotten, err
		}
		if f.Set {
			forgotten = append(forgotten, svc)
		}
	}
	return forgotten, nil
}
