package readiness

import "testing"

// TestTableReusesSlotsAndDropsStaleIDs: a removed watch's id finds nothing,
// even once a new watch has its slot; slots are reused before new ones;
// chunks are added as the table grows.
func TestTableReusesSlotsAndDropsStaleIDs(t *testing.T) {
	var tb table
	const n = 2*chunkSize + 10 // three chunks
	ws := make([]*Watch, n)
	for i := range ws {
		ws[i] = &Watch{}
		if err := tb.add(ws[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got := tb.len(); got != n {
		t.Fatalf("len %d, want %d", got, n)
	}
	for i, w := range ws {
		if got := tb.lookup(w.id); got != w {
			t.Fatalf("watch %d: lookup found %p, want %p", i, got, w)
		}
	}
	old := ws[chunkSize+5]
	tb.remove(old)
	tb.remove(old) // twice: no double free of the slot
	if got := tb.lookup(old.id); got != nil {
		t.Fatal("a removed watch is still found")
	}
	w := &Watch{}
	if err := tb.add(w); err != nil {
		t.Fatal(err)
	}
	if uint32(w.id) != uint32(old.id) {
		t.Errorf("new watch got slot %d, want the freed slot %d", uint32(w.id), uint32(old.id))
	}
	if w.id == old.id {
		t.Fatal("new watch reuses the removed one's id")
	}
	if got := tb.lookup(old.id); got != nil {
		t.Fatal("the removed watch's id finds the slot's new watch")
	}
	if got := tb.lookup(w.id); got != w {
		t.Fatal("the new watch is not found")
	}
	if got := tb.len(); got != n {
		t.Fatalf("len %d after one out and one in, want %d", got, n)
	}
	// Ids never handed out, or beyond the table, find nothing.
	for _, id := range []uint64{uint64(n + 100), 1<<32 | uint64(maxChunks*chunkSize), ^uint64(0)} {
		if got := tb.lookup(id); got != nil {
			t.Errorf("lookup(%#x) found a watch", id)
		}
	}
}
