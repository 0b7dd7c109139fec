package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/manta-ml/manta/internal/devcerts"
)

// cmdCerts makes a development CA and one certificate per member name for
// mutual TLS between members (--tls-cert, --tls-key, --tls-ca on serve).
func cmdCerts(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	names := fs.String("members", "member", "member names, comma separated: one certificate each")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "host names and IPs the certificates are valid for")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("certs: want DIR")
	}
	ca, err := devcerts.NewCA("manta development CA")
	if err != nil {
		return err
	}
	for _, name := range strings.Split(*names, ",") {
		leaf, err := ca.Issue(name, strings.Split(*hosts, ",")...)
		if err != nil {
			return err
		}
		f, err := devcerts.WriteFiles(pos[0], ca, name, leaf)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "manta serve --tls-cert %s --tls-key %s --tls-ca %s …\n", f.Cert, f.Key, f.CA)
	}
	fmt.Fprintln(stdout, "a development CA: use your own PKI in production")
	return nil
}
