package main

import (
	"fmt"
	"log/slog"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/secret"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/tlscert"
	"github.com/wsdirect/terraform-provider-wsdirect/node"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// loadAuthKeys reads the -auth-keys entries: PEM files, directories of
// them, or parameters (public keys are not secret, so a String parameter
// will do). Every entry must hold at least one key.
func loadAuthKeys(refs []string) (token.KeySet, error) {
	ks := token.KeySet{}
	for _, ref := range refs {
		if !secret.IsParameter(ref) {
			set, err := token.LoadKeySet(ref)
			if err != nil {
				return nil, fmt.Errorf("-auth-keys %s: %w", ref, err)
			}
			for _, k := range set {
				ks.Add(k)
			}
			continue
		}
		pem, err := secret.ReadPublic("-auth-keys", ref)
		if err != nil {
			return nil, err
		}
		keys, err := token.ParsePublicKeys([]byte(pem))
		if err != nil {
			return nil, fmt.Errorf("-auth-keys %s: %w", ref, err)
		}
		for _, k := range keys {
			ks.Add(k)
		}
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("-auth-keys: no public keys found")
	}
	return ks, nil
}

// reload re-reads what SIGHUP re-reads: the TLS certificate files, the auth
// keys, the gossip keys and the admin token. Each that cannot be read, or is broken, keeps its
// previous value; the others still reload.
func reload(o *options, v *token.Verifier, cl *cluster.Cluster, n *node.Node, certs *tlscert.Manager, log *slog.Logger) {
	if err := certs.Reload(); err != nil {
		log.Error("SIGHUP: keeping the old TLS certificate", "err", err)
	}
	if keys, err := loadAuthKeys(o.authKeys); err != nil {
		log.Error("SIGHUP: keeping the old auth keys", "err", err)
	} else {
		v.SetKeys(keys)
		log.Info("SIGHUP: auth keys reloaded", "keys", keys.IDs())
	}
	if k, err := o.gossip.ReloadKeys(cl); err != nil {
		log.Error("SIGHUP: keeping the old gossip keys", "err", err)
	} else if k > 0 {
		log.Info("SIGHUP: gossip keys reloaded", "keys", k)
	}
	if o.adminTokenFile != "" {
		tok, err := secret.Read("-admin-token-file", o.adminTokenFile)
		if err == nil {
			err = n.SetAdminToken(tok)
		}
		if err != nil {
			log.Error("SIGHUP: keeping the old admin token", "err", err)
		} else {
			log.Info("SIGHUP: admin token reloaded")
		}
	}
}
