package sim

import (
	"context"
	"log/slog"

	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/store"
)

// setLimit is an operator setting group's limit to value as `rebootmgr limit` does (the store's
// SetLimit, against the key as read): a limit that opens places opens them to the queue in its
// order. The operator's command passes over nobody (see checkHandOffs).
func (w *World) setLimit(group, value string) {
	l, err := lock.ParseLimit(value)
	if err != nil {
		w.log("op", "limit %q: %v", value, err)
		return
	}
	_, index, _ := w.model.Get(w.keys.GroupLimit(group))
	st := &store.Consul{Client: w.model.Client("operator", nil), Keys: w.keys, Group: group, Logger: slog.New(slog.DiscardHandler), Now: clock{w: w, node: &node{}}.Now}
	w.chk.operator = true
	defer func() { w.chk.operator = false }()
	if err := st.SetLimit(context.Background(), l, index); err != nil {
		w.log("op", "limit %s %s refused: %v", group, value, err)
	}
}

// putLimit is an operator writing group's limit key by hand, as consul kv put does: the key
// alone, nothing noted in the queue (each daemon notes a limit changed: see lock.Sightings).
func (w *World) putLimit(group, value string) {
	w.chk.operator = true
	defer func() { w.chk.operator = false }()
	w.model.Put(w.keys.GroupLimit(group), value)
}
