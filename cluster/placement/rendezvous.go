package placement

import "hash/fnv"

// Owner returns the address among addrs that rendezvous hashing gives
// identity: the highest FNV-1a 32 of identity's bytes followed by the
// address's bytes. It is protoactor's rule (cluster.Rendezvous, used by
// disthash), so a Manta directory owner is the member disthash would have
// activated the identity on. It returns "" when addrs is empty; on an exact
// tie the first address wins.
func Owner(identity string, addrs []string) string {
	best, bestScore := "", uint32(0)
	for _, a := range addrs {
		if s := Score32(identity, a); best == "" || s > bestScore {
			best, bestScore = a, s
		}
	}
	return best
}

// Score32 is the rendezvous weight of identity on addr.
func Score32(identity, addr string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(identity))
	h.Write([]byte(addr))
	return h.Sum32()
}
