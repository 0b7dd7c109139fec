package cluster

import (
	"strconv"
	"strings"
)

// KindModel is the cluster kind of model actors: the only kind whose memory
// the directory estimates through the Source. Its identities are a model id
// ("eta"), or "id@k" for replica k ≥ 1 of a hot model ("eta@2").
const KindModel = "model"

// ParseIdentity splits a model actor's identity into its model id and
// replica index: "eta@2" → ("eta", 2), "eta" → ("eta", 0). It is the one
// reader of the "id@k" shape; a suffix that is not a number reads as 0
// (model ids never hold '@': modelhost.ValidID).
func ParseIdentity(identity string) (id string, replica int) {
	id, k, ok := strings.Cut(identity, "@")
	if !ok {
		return identity, 0
	}
	n, err := strconv.Atoi(k)
	if err != nil {
		return id, 0
	}
	return id, n
}

// ModelOf is identity's model id ("eta@2" → "eta").
func ModelOf(identity string) string {
	id, _ := ParseIdentity(identity)
	return id
}

// ReplicaOf is identity's replica index, 0 for the primary.
func ReplicaOf(identity string) int {
	_, k := ParseIdentity(identity)
	return k
}

// ReplicaIdentity is the identity of replica k of model id (k = 0: the
// primary, the id itself).
func ReplicaIdentity(id string, k int) string {
	if k == 0 {
		return id
	}
	return id + "@" + strconv.Itoa(k)
}
