package logkey

import (
	"context"
	"log/slog"
	"slices"
)

// Unique wraps h so that a line names each key once: an attribute given again (a logger's
// With, then the line's own) replaces the earlier one, in its place. slog's handlers write
// both, and the strictest JSON ingesters refuse such a line.
func Unique(h slog.Handler) slog.Handler {
	return &unique{inner: h}
}

// unique holds the attributes given since the last group (or the start): they are handed to the
// inner handler with each line's own, once the line is known.
type unique struct {
	inner slog.Handler
	attrs []slog.Attr
}

func (u *unique) Enabled(ctx context.Context, level slog.Level) bool {
	return u.inner.Enabled(ctx, level)
}

func (u *unique) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return u
	}
	return &unique{inner: u.inner, attrs: append(slices.Clip(u.attrs), attrs...)}
}

// WithGroup gives the inner handler the attributes so far: a group's attributes are its own.
func (u *unique) WithGroup(name string) slog.Handler {
	if name == "" {
		return u
	}
	return &unique{inner: u.inner.WithAttrs(once(u.attrs)).WithGroup(name)}
}

func (u *unique) Handle(ctx context.Context, r slog.Record) error {
	attrs := slices.Clone(u.attrs)
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(once(attrs)...)
	return u.inner.Handle(ctx, out)
}

// once is attrs with each key once: where it first came, with the value it was last given. An
// attribute without a key (an inlined group) is kept as it is.
func once(attrs []slog.Attr) []slog.Attr {
	at := make(map[string]int, len(attrs))
	out := make([]slog.Attr, 0, len(attrs))
	for _, a := range attrs {
		if i, ok := at[a.Key]; ok && a.Key != "" {
			out[i] = a
			continue
		}
		at[a.Key] = len(out)
		out = append(out, a)
	}
	return out
}
