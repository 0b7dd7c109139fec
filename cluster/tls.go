package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// TLSConfig turns on mutual TLS for the members' gRPC remote: every member
// presents CertFile/KeyFile and accepts only peers whose certificate the
// CA in CAFile signed. Start checks the members already registered with a
// TLS handshake and refuses to join (ErrPeerRefused) when they refuse this
// member or it refuses them. A member without a certificate from that CA cannot
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

// configs loads the files into the server's and the client's tls.Config.
func (t TLSConfig) configs() (server, client *tls.Config, err error) {
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
	server = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
	}
	return server, client, nil
}

// ErrPeerRefused is returned by Start when TLS is on and the members
// already in the cluster refuse this member's certificate, or present one
// its CA did not sign: a member with the wrong CA or certificate would
// register with the provider yet could exchange no message, and directory
// ownership of a share of the models would fall to it. It stops instead.
var ErrPeerRefused = errors.New("cluster: tls: the cluster's members and this member do not trust each other's certificates")

// checkPeers makes a TLS handshake with client, as the remote would, with
// each member in peers (at most timeout each, concurrently). It returns nil when one
// succeeds or when none could be reached (registrations of members that
// died linger for a few seconds); ErrPeerRefused naming the certificate
// problem when every member reached refused the handshake.
func checkPeers(client *tls.Config, peers []string, timeout time.Duration) error {
	if len(peers) == 0 {
		return nil
	}
	client = client.Clone()
	client.NextProtos = []string{"h2"}
	errs := make(chan error, len(peers))
	for _, addr := range peers {
		go func() { errs <- probeTLS(client, addr, timeout) }()
	}
	var refused error
	for range peers {
		switch err := <-errs; {
		case err == nil:
			return nil
		case errors.Is(err, errRefused):
			refused = err
		}
	}
	if refused != nil {
		return fmt.Errorf("%w: %v (check --tls-ca and --tls-cert)", ErrPeerRefused, refused)
	}
	return nil
}

var errRefused = errors.New("refused")

// probeTLS handshakes with addr. A certificate the peer presents that our
// CA did not sign, or an alert the peer sends after checking ours (TLS 1.3
// sends it after the handshake, so one read waits for it), is errRefused;
// an unreachable peer is another error.
func probeTLS(cfg *tls.Config, addr string, timeout time.Duration) error {
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg.Clone())
	if err != nil {
		if certError(err) {
			return fmt.Errorf("%w: member %s: %v", errRefused, addr, err)
		}
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	var b [1]byte
	_, err = conn.Read(b[:])
	var ne net.Error
	switch {
	case err == nil, errors.As(err, &ne) && ne.Timeout():
		return nil // the gRPC server spoke (its settings), or kept quiet: accepted
	case certError(err):
		return fmt.Errorf("%w: member %s: %v", errRefused, addr, err)
	}
	return err
}

func certError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) ||
		strings.Contains(err.Error(), "remote error: tls:")
}
