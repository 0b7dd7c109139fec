package router

import (
	"strings"
	"testing"
)

// TestRedisURLErrorsHideSecrets: an error about the Redis URL names it
// without its password or secret query parameters (the router's own
// redaction used to keep ?token=… and friends).
func TestRedisURLErrorsHideSecrets(t *testing.T) {
	secrets := []string{"s3cret", "tok3n", "sig4ture", "acc3ss"}
	for _, u := range []string{
		"redis://alice:s3cret@host:notaport/0?token=tok3n&X-Amz-Signature=sig4ture&access_key=acc3ss",
		"redis://alice:s3cret@host:6379/0?token=tok3n&X-Amz-Signature=sig4ture&access_key=acc3ss", // tls_ca_file without rediss
	} {
		c := DefaultConfig()
		c.URL = u
		c.TLSCAFile = "ca.pem"
		_, err := c.RedisOptions()
		if err == nil {
			t.Fatalf("%s: no error", u)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error shows the secret %q: %v", s, err)
			}
		}
		if !strings.Contains(err.Error(), "host") {
			t.Errorf("error does not name the URL: %v", err)
		}
	}
}
