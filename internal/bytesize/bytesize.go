// Package bytesize is the project's one parser of byte sizes (memory
// budgets, payload limits, S3 part sizes), so that a flag, an environment
// variable and a store URL read "4G" and "1.5GiB" the same way.
package bytesize

import (
	"fmt"
	"math"
	"strings"

	"github.com/dustin/go-humanize"
)

// Parse reads a size as go-humanize does: a number, fractions allowed, with
// an optional unit, case-insensitive, white space allowed between them. SI
// units are powers of 1000 (kB, MB, GB, TB, PB and the short K, M, G, T,
// P); IEC units are powers of 1024 (KiB, MiB, GiB, TiB, PiB and Ki, Mi, Gi,
// Ti, Pi). So "4G" is 4·10⁹ bytes and "1.5GiB" is 1.5·2³⁰. Negative sizes
// and sizes above math.MaxInt64 are errors.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" || t[0] == '-' || t[0] == '+' {
		return 0, fmt.Errorf("bad size %q (use e.g. 4GiB, 512MiB, 1.5G or bytes)", s)
	}
	n, err := humanize.ParseBytes(t)
	if err != nil || n > math.MaxInt64 {
		return 0, fmt.Errorf("bad size %q (use e.g. 4GiB, 512MiB, 1.5G or bytes)", s)
	}
	return int64(n), nil
}
