package sched

// Claimer picks, by rendezvous (highest random weight) hashing of the pod uid
// over the live agent names, the one agent that places this pod; "" when
// agents is empty. Every agent with the same membership computes the same
// claimer, and removing an agent moves only the pods it claimed (adding one
// moves only the pods it now wins). Empty names are skipped; duplicates are
// harmless.
func Claimer(podUID string, agents []string) string {
	var best string
	var bestW uint64
	for _, a := range agents {
		if a == "" {
			continue
		}
		w := claimWeight(podUID, a)
		if best == "" || w > bestW || (w == bestW && a < best) {
			best, bestW = a, w
		}
	}
	return best
}

// claimWeight hashes (agent, uid) with FNV-1a and a murmur3 finalizer, so
// that similar names and uids still give independent weights. It must never
// change: agents of different versions must agree on the claimer.
func claimWeight(uid, agent string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(agent); i++ {
		h ^= uint64(agent[i])
		h *= prime
	}
	h *= prime // a zero separator byte (h ^= 0 elided): ("ab","c") and ("a","bc") differ
	for i := 0; i < len(uid); i++ {
		h ^= uint64(uid[i])
		h *= prime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb33f1a85ec53
	h ^= h >> 33
	return h
}
