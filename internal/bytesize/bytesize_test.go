package bytesize

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "123": 123, "5B": 5,
		// IEC: powers of 1024, fractions allowed
		"1KiB": 1 << 10, "2 MiB": 2 << 20, "4GiB": 4 << 30, "512MiB": 512 << 20, "1.5GiB": 3 << 29, "4Gi": 4 << 30,
		// SI, long and short: powers of 1000
		"100MB": 100e6, "1GB": 1e9, "4G": 4e9, "4g": 4e9, "1.5G": 1.5e9, "2T": 2e12,
		" 16MiB ": 16 << 20,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", " ", "x", "-1", "+1", "GiB", "1XB", "1QB", "99999999999TiB", "9EiB", "1.5.5G"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", in, got)
		}
	}
}
