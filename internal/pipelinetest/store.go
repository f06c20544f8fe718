// Package pipelinetest holds stand-ins for what the reboot pipeline consumes: a store of the
// fleet's keys in memory, a clock that only moves when waited on, health, tasks and a reboot
// command that record what they are asked. The store is kept honest by a contract test that
// runs the same sequences against it and against store.Consul on a real Consul agent.
package pipelinetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/pipeline"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
)

// ErrKilled is what every call returns once the store has been told the process died.
var ErrKilled = errors.New("killed")

// entry is one key: its value, the index of its last write and of its creation.
type entry struct {
	value          string
	index, created uint64
}

// Store is the fleet's keys in memory, for one group and one local node, with Consul's
// check-and-set semantics as store.Consul has them.
type Store struct {
	// Group is the group whose lock, limit and stop flag apply ("default" when empty);
	// Node is the local agent's node (maintenance is per agent).
	Group string
	Node  string
	// AfterWrite, when set, is called after every write with the number of writes so far
	// (under no lock): a test ends a run there to kill it after that write.
	AfterWrite func(writes int)
	// GroupNodes is how many nodes the group has, as Consul would count them for a limit that is
	// a share of them.
	GroupNodes int
	// Zones are the zones of the group's nodes, as the catalog's node meta would give them for a
	// limit bounded per zone.
	Zones map[string]string

	mu          sync.Mutex
	kv          map[string]entry
	index       uint64
	writes      int
	maintenance string
	changed     chan struct{}
	// failDisabled makes writing a disabled mark fail (an ACL that denies it).
	failDisabled bool
	// failQueue makes every change of the group's queue fail (an ACL that denies it).
	failQueue bool
	// failTrigger makes every rewrite of a reboot request fail (an ACL that denies it).
	failTrigger bool
}

// NewStore returns an empty store of group with node as the local node.
func NewStore(group, node string) *Store {
	if group == "" {
		group = "default"
	}
	return &Store{Group: group, Node: node, kv: map[string]entry{}, changed: make(chan struct{})}
}

var _ pipeline.Store = (*Store)(nil)

// Layout is where the store keeps each key: store.Consul's layout (store.Keys) from the root,
// without rebootmgr's prefix, so that a record is where store.Consul keeps it and a test writes
// "holders" or "groups/default/queue" as an operator writes them under the prefix.
func Layout() store.Keys { return store.Keys{} }

func stopKey() string                { return Layout().Stop() }
func groupStopKey(g string) string   { return Layout().GroupStop(g) }
func lockKey(g string) string        { return Layout().GroupLock(g) }
func limitKey(g string) string       { return Layout().GroupLimit(g) }
func historyKey(g string) string     { return Layout().GroupHistory(g) }
func queueKey(g string) string       { return Layout().GroupQueue(g) }
func fleetKey() string               { return Layout().Holders() }
func claimsKey() string              { return Layout().Claims() }
func turnKey(g, node string) string  { return Layout().GroupTurn(g, node) }
func disabledKey(node string) string { return Layout().Disabled(node) }
func triggerKey(node string) string  { return Layout().RebootRequired(node) }

// isLegacyKey says whether key is one of the Python rebootmgr's locks, of any group: the store
// is of one group, and a test emulates another by reading its keys too.
func isLegacyKey(key string) bool {
	k, ok := Layout().Parse(key)
	return ok && (k.Kind == store.KindPythonSession || k.Kind == store.KindPythonMarker)
}

// denied is the error of a write an ACL denies, as store.Consul hands it on.
func denied(key string) error {
	return fmt.Errorf("write key %s: Permission denied: %w", key, store.ErrDenied)
}
func flagOf(e entry, ok bool) place.Flag {
	if !ok {
		return place.Flag{}
	}
	return place.Flag{Set: true, Value: e.value, Index: e.index}
}

// Put writes key as an operator would (no check-and-set): the setup of a test.
func (s *Store) Put(key, value string) {
	s.mu.Lock()
	s.put(key, value)
	s.mu.Unlock()
}

// Delete removes key as an operator would.
func (s *Store) Delete(key string) {
	s.mu.Lock()
	s.del(key)
	s.mu.Unlock()
}

// SetStop sets or removes the fleet's stop flag; SetGroupStop the group's.
func (s *Store) SetStop(value string, set bool) { s.setOrDelete(stopKey(), value, set) }

// SetGroupStop sets or removes the group's stop flag.
func (s *Store) SetGroupStop(value string, set bool) {
	s.setOrDelete(groupStopKey(s.Group), value, set)
}

// SetTrigger sets or removes node's reboot request.
func (s *Store) SetTrigger(node, value string, set bool) {
	s.setOrDelete(triggerKey(node), value, set)
}

// SetLimit sets the group's limit.
func (s *Store) SetLimit(n int) { s.Put(limitKey(s.Group), fmt.Sprint(n)) }

// SetLimitSpec sets the group's limit as its key holds it ("auto", "10%", "3 per-zone=1").
func (s *Store) SetLimitSpec(spec string) { s.Put(limitKey(s.Group), spec) }

// SetLegacy sets or removes a key of the Python rebootmgr's lock, by its name in the layout
// ("reboot_in_progress", "compute_reboot_in_progress", "lock/.lock"), naming node ("" for a
// session lock).
func (s *Store) SetLegacy(name, node string, set bool) { s.setOrDelete(name, node, set) }

// FailDisabledWrites makes every write of a disabled mark fail, as an ACL that denies it does.
func (s *Store) FailDisabledWrites(fail bool) {
	s.mu.Lock()
	s.failDisabled = fail
	s.mu.Unlock()
}

// FailQueueWrites makes every change of the group's queue fail, as an ACL that denies it does.
func (s *Store) FailQueueWrites(fail bool) {
	s.mu.Lock()
	s.failQueue = fail
	s.mu.Unlock()
}

// FailTriggerWrites makes every rewrite of a reboot request fail, as an ACL that denies it does.
func (s *Store) FailTriggerWrites(fail bool) {
	s.mu.Lock()
	s.failTrigger = fail
	s.mu.Unlock()
}

// PutLock writes the group's lock record as an operator or another node would.
func (s *Store) PutLock(rec lock.Record) {
	data, err := rec.Encode()
	if err != nil {
		panic(err)
	}
	s.Put(lockKey(s.Group), string(data))
}

// Fleet reads the fleet's holders record.
func (s *Store) Fleet() lock.Fleet {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.kv[fleetKey()]
	if !ok {
		return lock.Fleet{Version: lock.Version}
	}
	f, err := lock.DecodeFleet([]byte(e.value))
	if err != nil {
		panic(err)
	}
	return f
}

// Maintenance is the local node's maintenance reason ("" when none).
func (s *Store) Maintenance() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maintenance
}

// Writes counts the writes so far.
func (s *Store) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func (s *Store) setOrDelete(key, value string, set bool) {
	if set {
		s.Put(key, value)
	} else {
		s.Delete(key)
	}
}

// put and del write under s.mu, waking waiters.
func (s *Store) put(key, value string) {
	if e, ok := s.kv[key]; ok && e.value == value {
		// Consul keeps a key's index when it is written with the value it has.
		return
	}
	s.index++
	created := s.index
	if e, ok := s.kv[key]; ok {
		created = e.created
	}
	s.kv[key] = entry{value: value, index: s.index, created: created}
	s.wake()
}

func (s *Store) del(key string) {
	if _, ok := s.kv[key]; ok {
		s.index++
		delete(s.kv, key)
		s.wake()
	}
}

func (s *Store) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// write runs a write of the pipeline's: nothing once ctx ended (the process is gone), then
// AfterWrite.
func (s *Store) write(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrKilled, err)
	}
	s.mu.Lock()
	err := fn()
	s.writes++
	n := s.writes
	s.mu.Unlock()
	if s.AfterWrite != nil {
		s.AfterWrite(n)
	}
	return err
}

// read runs a read: nothing once ctx ended.
func (s *Store) read(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKilled, err)
	}
	s.mu.Lock()
	return s.mu.Unlock, nil
}

// Stop reads the fleet's stop flag, else the group's (its value says whose it is).
func (s *Store) Stop(ctx context.Context) (place.Flag, error) {
	unlock, err := s.read(ctx)
	if err != nil {
		return place.Flag{}, err
	}
	defer unlock()
	return s.stop(), nil
}

func (s *Store) stop() place.Flag {
	if f := flagOf(s.kv[stopKey()], hasKey(s.kv, stopKey())); f.Set {
		return f
	}
	f := flagOf(s.kv[groupStopKey(s.Group)], hasKey(s.kv, groupStopKey(s.Group)))
	if f.Set {
		f.Value = "group " + s.Group + ": " + f.Value
	}
	return f
}

func hasKey(kv map[string]entry, key string) bool {
	_, ok := kv[key]
	return ok
}

// WaitStop returns when a stop flag is set, or ctx ends (with its cause).
func (s *Store) WaitStop(ctx context.Context) (place.Flag, error) {
	for {
		s.mu.Lock()
		f, changed := s.stop(), s.changed
		s.mu.Unlock()
		if f.Set {
			return f, nil
		}
		select {
		case <-ctx.Done():
			return place.Flag{}, context.Cause(ctx)
		case <-changed:
		}
	}
}

// Disabled reads node's disabled mark.
func (s *Store) Disabled(ctx context.Context, node string) (place.Flag, error) {
	return s.flag(ctx, disabledKey(node))
}

// Trigger reads node's reboot request.
func (s *Store) Trigger(ctx context.Context, node string) (place.Flag, error) {
	return s.flag(ctx, triggerKey(node))
}

func (s *Store) flag(ctx context.Context, key string) (place.Flag, error) {
	unlock, err := s.read(ctx)
	if err != nil {
		return place.Flag{}, err
	}
	defer unlock()
	e, ok := s.kv[key]
	return flagOf(e, ok), nil
}

// SetDisabled marks node disabled, keeping a mark that is already there; the reason is cut as
// store.Consul cuts it.
func (s *Store) SetDisabled(ctx context.Context, node, reason string) error {
	return s.write(ctx, func() error {
		if s.failDisabled {
			return denied(disabledKey(node))
		}
		if !hasKey(s.kv, disabledKey(node)) {
			s.put(disabledKey(node), clip.Text(reason))
		}
		return nil
	})
}

// RewriteTrigger writes node's reboot request with value if it is still at index, cut as
// store.Consul cuts it; 0 when it changed or is gone.
func (s *Store) RewriteTrigger(ctx context.Context, node string, index uint64, value string) (uint64, error) {
	var written uint64
	err := s.write(ctx, func() error {
		if s.failTrigger {
			return denied(triggerKey(node))
		}
		if e, ok := s.kv[triggerKey(node)]; ok && e.index == index {
			s.put(triggerKey(node), clip.Text(value))
			written = s.kv[triggerKey(node)].index
		}
		return nil
	})
	return written, err
}

// DeleteTrigger deletes node's reboot request if it is still at index.
func (s *Store) DeleteTrigger(ctx context.Context, node string, index uint64) (bool, error) {
	var ok bool
	err := s.write(ctx, func() error {
		e, exists := s.kv[triggerKey(node)]
		if !exists {
			// Consul's delete-cas of a missing key succeeds.
			ok = true
			return nil
		}
		if e.index == index {
			s.del(triggerKey(node))
			ok = true
		}
		return nil
	})
	return ok, err
}

// Lock reads the group's lock record and its index (0: none).
func (s *Store) Lock(ctx context.Context) (lock.Record, uint64, error) {
	unlock, err := s.read(ctx)
	if err != nil {
		return lock.Record{}, 0, err
	}
	defer unlock()
	return s.lock()
}

func (s *Store) lock() (lock.Record, uint64, error) {
	e, ok := s.kv[lockKey(s.Group)]
	if !ok {
		return lock.Record{Version: lock.Version}, 0, nil
	}
	rec, err := lock.Decode([]byte(e.value))
	if err != nil {
		return lock.Record{}, 0, fmt.Errorf("reboot lock %s: %w", lockKey(s.Group), err)
	}
	return rec, e.index, nil
}

// View reads everything a View holds at one moment.
func (s *Store) View(ctx context.Context) (place.View, error) {
	unlock, err := s.read(ctx)
	if err != nil {
		return place.View{}, err
	}
	defer unlock()
	rec, _, err := s.lock()
	if err != nil {
		return place.View{}, err
	}
	v := place.View{Group: s.Group, Stop: s.stop(), Lock: rec, Limit: lock.One, Fleet: lock.Fleet{Version: lock.Version}, Legacy: map[string]string{}}
	if e, ok := s.kv[limitKey(s.Group)]; ok {
		if v.Limit, err = lock.ParseLimit(e.value); err != nil {
			return place.View{}, fmt.Errorf("key %s: %w", limitKey(s.Group), err)
		}
		if v.Limit.Percent > 0 {
			v.GroupNodes = s.GroupNodes
		}
		if v.Limit.PerZone > 0 {
			v.Zones = s.Zones
		}
	}
	if e, ok := s.kv[fleetKey()]; ok {
		if v.Fleet, err = lock.DecodeFleet([]byte(e.value)); err != nil {
			return place.View{}, fmt.Errorf("fleet's lock holders: %w", err)
		}
	}
	if v.Claims, err = s.claims(); err != nil {
		return place.View{}, err
	}
	version := viewVersion{index: map[string]uint64{}}
	if version.queue, version.asks, err = s.readQueue(); err != nil {
		return place.View{}, err
	}
	if node, named := place.NodeOf(ctx); named {
		if e, ok := s.kv[disabledKey(node)]; ok {
			v.Disabled = place.Flag{Set: true, Value: e.value, Key: disabledKey(node)}
		}
	}
	if node, partial := place.FrontFor(ctx); partial {
		// The queue's front: its record and the reader's own ask (see place.FrontOnly).
		v.Partial = true
		version.asks = slices.DeleteFunc(version.asks, func(a lock.Ask) bool { return a.Entry.Node != node })
	}
	v.Queue = lock.Merged(version.queue, version.asks)
	for key, e := range s.kv {
		if isLegacyKey(key) {
			v.Legacy[key] = e.value
		}
		version.index[key] = e.index
	}
	v.Version = version
	return v, nil
}

// Commit writes ch if the group's lock record (and, when ch writes them, the fleet's and the
// group's queue) is still as v read it; a lock or queue the change leaves as it is is only
// checked. The queue is written as store.Consul writes it (see lock.PlanQueue).
func (s *Store) Commit(ctx context.Context, v place.View, ch place.Change) (bool, error) {
	version, ok := v.Version.(viewVersion)
	if !ok {
		return false, errors.New("commit: the view was not read from this store")
	}
	if v.Partial {
		return false, fmt.Errorf("commit: %w", place.ErrPartial)
	}
	woken := place.Woken(v, ch)
	var applied bool
	err := s.write(ctx, func() error {
		var w lock.QueueWrite
		if ch.Queue != nil {
			if s.failQueue && !ch.Queue.Equal(v.Queue) {
				return denied(queueKey(s.Group))
			}
			w = lock.PlanQueue(version.queue, version.asks, *ch.Queue, queueBudget-min(len(woken), 32))
		}
		if !s.asRead(version.index, ch) || !s.asksAsRead(w) {
			return nil
		}
		if ch.Limit != nil {
			s.put(limitKey(s.Group), ch.Limit.String())
		}
		if !ch.Lock.Equal(v.Lock) {
			if err := s.store(lockKey(s.Group), len(ch.Lock.Holders) == 0, ch.Lock.Encode); err != nil {
				return err
			}
		}
		if err := s.writeQueue(w, ch.Queue); err != nil {
			return err
		}
		if ch.Fleet != nil {
			if err := s.store(fleetKey(), len(ch.Fleet.Holders) == 0, ch.Fleet.Encode); err != nil {
				return err
			}
		}
		for _, w := range woken {
			s.put(turnKey(s.Group, w.Node), store.TurnValue(w, time.Now()))
		}
		if err := s.tellLate(v, ch, version); err != nil {
			return err
		}
		applied = true
		return nil
	})
	return applied, err
}

// asRead says whether the group's lock record and limit, and the fleet's record and the group's
// queue when ch writes them, are still as the view read them at version. The store is locked.
func (s *Store) asRead(version map[string]uint64, ch place.Change) bool {
	unchanged := func(key string) bool {
		e, exists := s.kv[key]
		was, read := version[key]
		return exists == read && (!exists || e.index == was)
	}
	return unchanged(lockKey(s.Group)) && (ch.Fleet == nil || unchanged(fleetKey())) && (ch.Queue == nil || unchanged(queueKey(s.Group))) &&
		(ch.Limit == nil && version[limitKey(s.Group)] == 0 || unchanged(limitKey(s.Group)))
}

func (s *Store) claims() (lock.Claims, error) {
	e, ok := s.kv[claimsKey()]
	if !ok {
		return lock.Claims{Version: lock.Version}, nil
	}
	c, err := lock.DecodeClaims([]byte(e.value))
	if err != nil {
		return lock.Claims{}, fmt.Errorf("fleet's claims of room: %w", err)
	}
	return c, nil
}

// ChangeClaims writes the fleet's claims of room as change makes them (one write: the store is
// locked, so no race is lost).
func (s *Store) ChangeClaims(ctx context.Context, change func(lock.Claims) (lock.Claims, error)) error {
	return s.write(ctx, func() error {
		was, err := s.claims()
		if err != nil {
			return err
		}
		now, err := change(was)
		if err != nil {
			return err
		}
		before, _ := was.Encode()
		after, _ := now.Encode()
		if _, ok := s.kv[claimsKey()]; (!ok && len(now.Claims) == 0) || (ok && string(before) == string(after)) {
			return nil
		}
		return s.store(claimsKey(), len(now.Claims) == 0, now.Encode)
	})
}

// Claims reads the fleet's claims of room.
func (s *Store) Claims() (lock.Claims, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims()
}

func (s *Store) store(key string, empty bool, encode func() ([]byte, error)) error {
	if empty {
		s.del(key)
		return nil
	}
	data, err := encode()
	if err != nil {
		return err
	}
	s.put(key, string(data))
	return nil
}

// StopGroup sets the group's stop flag, keeping one already set; it reports whether it set it.
func (s *Store) StopGroup(ctx context.Context, reason string) (bool, error) {
	var set bool
	err := s.write(ctx, func() error {
		if !hasKey(s.kv, groupStopKey(s.Group)) {
			s.put(groupStopKey(s.Group), clip.Text(reason))
			set = true
		}
		return nil
	})
	return set, err
}

// History reads the group's history and its index (0: none yet).
func (s *Store) History(ctx context.Context) (history.Log, uint64, error) {
	unlock, err := s.read(ctx)
	if err != nil {
		return history.Log{}, 0, err
	}
	defer unlock()
	return s.history()
}

func (s *Store) history() (history.Log, uint64, error) {
	e, ok := s.kv[historyKey(s.Group)]
	if !ok {
		return history.Log{Version: 1}, 0, nil
	}
	l, err := history.Decode([]byte(e.value))
	return l, e.index, err
}

// AppendHistory adds an entry to the group's history.
func (s *Store) AppendHistory(ctx context.Context, e history.Entry) (history.Log, error) {
	var out history.Log
	err := s.write(ctx, func() error {
		l, _, err := s.history()
		if err != nil {
			return err
		}
		out = l.Append(e)
		data, err := out.Encode()
		if err != nil {
			return err
		}
		s.put(historyKey(s.Group), string(data))
		return nil
	})
	return out, err
}

// maintenancePrefix starts every maintenance reason rebootmgr sets, as in store.Consul.
const maintenancePrefix = "rebootmgr:"

// StartMaintenance puts the local node into maintenance, leaving someone else's alone.
func (s *Store) StartMaintenance(ctx context.Context, node, reason string) error {
	return s.write(ctx, func() error {
		if node != s.Node {
			return fmt.Errorf("node %s is not the local consul agent's (%s)", node, s.Node)
		}
		if !strings.HasPrefix(reason, maintenancePrefix) {
			reason = maintenancePrefix + " " + reason
		}
		if s.maintenance == "" || strings.HasPrefix(s.maintenance, maintenancePrefix) {
			s.maintenance = reason
		}
		return nil
	})
}

// EndMaintenance ends the local node's maintenance if rebootmgr started it.
func (s *Store) EndMaintenance(ctx context.Context, node string) error {
	return s.write(ctx, func() error {
		if node != s.Node {
			return fmt.Errorf("node %s is not the local consul agent's (%s)", node, s.Node)
		}
		if strings.HasPrefix(s.maintenance, maintenancePrefix) {
			s.maintenance = ""
		}
		return nil
	})
}

// SetOperatorMaintenance puts the node into maintenance as an operator would.
func (s *Store) SetOperatorMaintenance(reason string) {
	s.mu.Lock()
	s.maintenance = reason
	s.mu.Unlock()
}

// Keys are the keys the store holds, for a test's diagnostics.
func (s *Store) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.kv))
	for k := range maps.Keys(s.kv) {
		out = append(out, k)
	}
	return out
}
