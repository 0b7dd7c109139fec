package s3store

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/manta-ml/manta/internal/devcerts"
	"github.com/manta-ml/manta/internal/testenv"
)

// MinIO over HTTPS: a store that trusts the server's CA works; one that
// does not fails with a certificate error, and neither shows the secret.
func TestMinIOOverHTTPS(t *testing.T) {
	ca, err := devcerts.NewCA("minio test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("minio", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	mi := testenv.StartMinIO(t, testenv.WithMinIOTLS(leaf.CertPEM, leaf.KeyPEM, ca.CertPEM))
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Endpoint, cfg.Secure, cfg.Bucket = mi.Endpoint, true, "models"
	cfg.AccessKey, cfg.SecretKey = mi.AccessKey, mi.SecretKey
	cfg.CacheDir = t.TempDir()
	cfg.CAFile = mi.CAFile
	st, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(ctx); err != nil {
		t.Fatalf("over https: %v", err)
	}
	body := []byte(`{"weights":[1],"bias":0}`)
	if err := st.Put(ctx, "tls-model", "1", "model.json", bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	rc, err := st.Open(ctx, "tls-model", "1", "model.json")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("read back %q", got)
	}

	untrusting := cfg
	untrusting.CAFile = ""
	untrusting.CacheDir = t.TempDir()
	st2, err := Open(ctx, untrusting)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st2.Versions(ctx, "tls-model")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without the CA: %v, want a certificate error", err)
	}
	if strings.Contains(err.Error(), mi.SecretKey) {
		t.Fatal("the error shows the secret key")
	}
	// the URL form
	u := "s3://models?endpoint=" + mi.Endpoint + "&secure=true&ca_file=" + mi.CAFile + "&cache_dir=" + t.TempDir()
	c, err := ParseURL(u)
	if err != nil || c.CAFile != mi.CAFile {
		t.Fatalf("ParseURL: %+v %v", c, err)
	}
}
