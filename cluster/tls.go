package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// TLSConfig turns on mutual TLS for the members' gRPC remote: every member
// presents CertFile/KeyFile and accepts only peers whose certificate the
// CA in CAFile signed. A member without a certificate from that CA cannot
// exchange a message with the cluster. `manta certs DIR` makes a
// development CA and certificates.
type TLSConfig struct {
	CertFile string `json:"cert_file,omitempty" yaml:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty" yaml:"key_file,omitempty"`
	CAFile   string `json:"ca_file,omitempty" yaml:"ca_file,omitempty"`
}

// Enabled reports whether TLS is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" }

// Validate checks that all three files are given.
func (t TLSConfig) Validate() error {
	if t.Enabled() && (t.CertFile == "" || t.KeyFile == "" || t.CAFile == "") {
		return errors.New("cluster: config: tls needs cert_file, key_file and ca_file together")
	}
	return nil
}

// credentials loads the files into the gRPC server and dial credentials.
func (t TLSConfig) credentials() (grpc.ServerOption, grpc.DialOption, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: tls: load %s / %s: %w", t.CertFile, t.KeyFile, err)
	}
	caPEM, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("cluster: tls: %s holds no PEM certificate", t.CAFile)
	}
	server := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	client := &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
	}
	return grpc.Creds(credentials.NewTLS(server)), grpc.WithTransportCredentials(credentials.NewTLS(client)), nil
}
