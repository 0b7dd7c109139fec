package cluster

import "testing"

func TestParseIdentity(t *testing.T) {
	for _, c := range []struct {
		in      string
		id      string
		replica int
	}{
		{"eta", "eta", 0}, {"eta@2", "eta", 2}, {"eta@0", "eta", 0}, {"eta@x", "eta", 0}, {"eta@", "eta", 0}, {"", "", 0},
	} {
		id, k := ParseIdentity(c.in)
		if id != c.id || k != c.replica || ModelOf(c.in) != c.id || ReplicaOf(c.in) != c.replica {
			t.Errorf("ParseIdentity(%q) = %q, %d; want %q, %d", c.in, id, k, c.id, c.replica)
		}
	}
	for _, k := range []int{0, 1, 15} {
		if id, got := ParseIdentity(ReplicaIdentity("m", k)); id != "m" || got != k {
			t.Errorf("ReplicaIdentity(m, %d) reads back as %q, %d", k, id, got)
		}
	}
}
