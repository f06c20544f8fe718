package lock

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"
)

// queueOf is the record of a queue of n nodes, as Encode writes it.
func queueOf(t testing.TB, n int) []byte {
	t.Helper()
	var q Queue
	for i := range n {
		q.Entries = append(q.Entries, QueueEntry{Node: fmt.Sprintf("n%04d", i), Since: time.Unix(int64(i), 0).UTC(), Blocked: "health: \"svc\" <1/2>"})
	}
	data, err := q.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestQuickShape: the quick look is sure of the records rebootmgr writes, and of nothing that
// the reading token by token refuses.
func TestQuickShape(t *testing.T) {
	queue := queueShape()
	for _, tt := range []struct {
		name, data string
		sure       bool
	}{
		{"a queue", string(queueOf(t, 3)), true},
		{"white space", " { \"version\" : 1 , \"entries\" : [ ] } \n", true},
		{"numbers and literals", `{"version":-0.5e+3,"entries":[],"freed":null}`, true},
		{"any value in a field of any shape", `{"version":{"a":[1,{"b":true}],"c":"\u00e9\n"},"entries":[]}`, true},
		{"a field unknown", `{"version":1,"entrie":[]}`, false},
		{"a field twice", `{"version":1,"version":1}`, false},
		{"a field twice in any value", `{"version":{"a":1,"a":2}}`, false},
		{"an entry's field unknown", `{"version":1,"entries":[{"node":"a","x":1}]}`, false},
		{"a key escaped", `{"versio\u006e":1}`, false},
		{"too deep", `{"version":[[[[[[[[[[1]]]]]]]]]]}`, false},
		{"deep enough", `{"version":[[[[[[[[1]]]]]]]]}`, true},
		{"trailing data", `{"version":1} x`, false},
		{"two values", `{"version":1}{}`, false},
		{"a list", `[]`, false},
		{"empty", ``, false},
		{"truncated", `{"version":1`, false},
		{"a bad number", `{"version":01}`, false},
		{"a bad literal", `{"version":nul}`, false},
		{"a bad escape", `{"version":"\x"}`, false},
		{"a control character", "{\"version\":\"a\tb\"}", false},
		{"a trailing comma", `{"version":1,}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sure := quickShape([]byte(tt.data), queue)
			if sure != tt.sure {
				t.Errorf("sure: %v, want %v", sure, tt.sure)
			}
			if err := walkShape([]byte(tt.data), queue); sure && err != nil {
				t.Errorf("sure, but token by token: %v", err)
			}
		})
	}
}

// queueShape is the shape DecodeQueue holds a queue's record to.
func queueShape() *shape {
	return &shape{fields: map[string]*shape{"version": nil, "freed": nil,
		"entries": {elem: &shape{fields: map[string]*shape{"node": nil, "since": nil, "blocked": nil}}}}}
}

// FuzzQuickShape: whatever the quick look is sure of, the reading token by token finds fine.
func FuzzQuickShape(f *testing.F) {
	f.Add(string(queueOf(f, 2)))
	f.Add(`{"version":[1,-2.5E-3,true,false,null,{"a":"\u00e9"}],"entries":[{"node":"a"}]}`)
	f.Fuzz(func(t *testing.T, data string) {
		if quickShape([]byte(data), queueShape()) {
			if err := walkShape([]byte(data), queueShape()); err != nil {
				t.Fatalf("%q: sure, but token by token: %v", data, err)
			}
		}
	})
}

// BenchmarkDecodeQueue: what reading the queue of 1,000 nodes costs.
func BenchmarkDecodeQueue(b *testing.B) {
	data := queueOf(b, 1000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeQueue(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStoredNodes: the nodes of a queue as stored are those its record, read back, holds.
func TestStoredNodes(t *testing.T) {
	var whole Queue
	for i := range 3000 {
		whole.Entries = append(whole.Entries, QueueEntry{Node: fmt.Sprintf("n%04d", i), Since: time.Unix(int64(i), 0).UTC()})
	}
	for _, tt := range []struct {
		name string
		q    Queue
	}{
		{"empty", Queue{}},
		{"a few", Queue{Entries: []QueueEntry{{Node: "a"}, {Node: "b", Blocked: ForRoom}}}},
		{"a name not UTF-8", Queue{Entries: []QueueEntry{{Node: "a\xff"}, {Node: "b"}}}},
		{"beyond its bound", whole},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.q.Encode()
			if err != nil {
				t.Fatal(err)
			}
			var stored Queue
			if err := json.Unmarshal(data, &stored); err != nil {
				t.Fatal(err)
			}
			if got, want := storedNodes(tt.q), nodesOf(stored.Entries); !maps.Equal(got, want) {
				t.Errorf("stored nodes %v, want %v", got, want)
			}
		})
	}
}
