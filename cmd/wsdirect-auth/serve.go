package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/wsdirect/terraform-provider-wsdirect/authsvc"
	jsclient "github.com/wsdirect/terraform-provider-wsdirect/client/js"
	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/discover"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/gossipcli"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/secret"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/tlscert"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// options are the flags of the serve command.
type options struct {
	bind                             string
	gossip                           gossipcli.Flags
	signingKey                       string
	users, authCallback              string
	jwksURL, jwtIssuer, jwtAudience  string
	adminTokenFile                   string
	tokenTTL                         time.Duration
	loginRate                        float64
	loginBurst, maxUserTokens        int
	trustForwardedFor                bool
	demo                             bool
	name                             string
	callbackTimeout, shutdownTimeout time.Duration
	tls                              *tlscert.Config
	balancerURL, balancerAudience    string
	balancer                         *authsvc.Balancer
}

// serveFlags defines the serve command's flags on a new flag set whose
// usage is the command's whole usage: the subcommands, then these flags.
// It sets o.tls to tlscert.DefaultConfig, whose values are the TLS flags'
// defaults.
func serveFlags(o *options, stderr io.Writer) *flag.FlagSet {
	o.tls = tlscert.DefaultConfig()
	fs := flag.NewFlagSet("wsdirect-auth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.bind, "bind", "127.0.0.1:8443", "HTTP address for /v1/connect, /v1/nodes, /healthz and /metrics")
	o.gossip.Register(fs)
	fs.StringVar(&o.signingKey, "signing-key", "", "Ed25519 private key PEM `file or ssm:///parameter` (from keygen) for minting connection tokens; required")
	fs.StringVar(&o.users, "users", "", "bcrypt users `file or ssm:///parameter` (user:$2y$... lines, htpasswd -B compatible); the default backend")
	fs.StringVar(&o.authCallback, "auth-callback", "", "URL of an existing auth endpoint to POST credentials to instead of -users")
	fs.StringVar(&o.jwksURL, "jwks-url", "", "JWKS URL to verify 'Authorization: Bearer <jwt>' against instead of -users")
	fs.StringVar(&o.jwtIssuer, "jwt-issuer", "", "required iss of bearer JWTs (with -jwks-url)")
	fs.StringVar(&o.jwtAudience, "jwt-audience", "", "required aud of bearer JWTs (with -jwks-url)")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "`file or ssm:///parameter` holding the bearer token for GET /v1/nodes (endpoint disabled without it)")
	fs.DurationVar(&o.tokenTTL, "token-ttl", token.DefaultTTL, "lifetime of connection tokens")
	fs.Float64Var(&o.loginRate, "login-rate", 1, "failed logins allowed per second per client IP, after the burst")
	fs.IntVar(&o.loginBurst, "login-burst", 10, "failed logins allowed in a row per client IP")
	fs.IntVar(&o.maxUserTokens, "max-user-tokens", authsvc.DefaultMaxUserTokens, "tokens one user may hold that no node has counted yet; more get 429 too_many_tokens (0: no limit)")
	fs.BoolVar(&o.demo, "demo", false, "serve the browser demo page and JS client under /demo/ (same origin as /v1/connect)")
	fs.BoolVar(&o.trustForwardedFor, "trust-forwarded-for", false, "take the client IP from X-Forwarded-For (only behind a proxy that sets it)")
	fs.DurationVar(&o.callbackTimeout, "auth-callback-timeout", authsvc.DefaultCallbackTimeout, "timeout of one -auth-callback request")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to let in-flight requests finish on SIGTERM")
	fs.StringVar(&o.name, "name", "", "unique cluster member name (default auth-<hostname>)")
	fs.StringVar(&o.balancerURL, "balancer-url", "", "send every client to this load balancer `URL` (ws:// or wss://host[:port]/ws, e.g. HAProxy in front of the nodes) instead of picking a node; needs -balancer-audience")
	fs.StringVar(&o.balancerAudience, "balancer-audience", "", "token audience the nodes behind -balancer-url accept (their -token-audience)")
	o.tls.RegisterFlags(fs)
	return fs
}

// parseServeFlags parses and checks the serve command line. It returns
// flag.ErrHelp for -h, errFlagParse when the flag package rejected the
// line, and a usageError for a bad value or combination.
func parseServeFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := serveFlags(o, stderr)
	if err := parseArgs(fs, args); err != nil {
		return nil, err
	}
	if err := o.check(fs); err != nil {
		return nil, usageError{"wsdirect-auth", err}
	}
	if o.name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("-name not given and no hostname: %w", err)
		}
		o.name = "auth-" + h
	}
	return o, nil
}

func (o *options) check(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (subcommands: keygen, hash-password)", fs.Args())
	}
	if o.signingKey == "" {
		return errors.New("-signing-key is required (create one with `wsdirect-auth keygen -out <dir>`)")
	}
	backends := 0
	for _, s := range []string{o.users, o.authCallback, o.jwksURL} {
		if s != "" {
			backends++
		}
	}
	if backends != 1 {
		return errors.New("give exactly one credential backend: -users <file>, -auth-callback <url> or -jwks-url <url>")
	}
	if o.jwksURL != "" && (o.jwtIssuer == "" || o.jwtAudience == "") {
		return errors.New("-jwks-url needs -jwt-issuer and -jwt-audience")
	}
	if o.tokenTTL < time.Second {
		return fmt.Errorf("-token-ttl %v is too short (at least 1s)", o.tokenTTL)
	}
	if o.loginRate <= 0 || o.loginBurst <= 0 {
		return errors.New("-login-rate and -login-burst must be positive")
	}
	if o.maxUserTokens < 0 {
		return errors.New("-max-user-tokens must be >= 0 (0: no limit)")
	}
	if (o.balancerURL == "") != (o.balancerAudience == "") {
		return errors.New("-balancer-url and -balancer-audience go together: the nodes behind the balancer accept that audience (their -token-audience)")
	}
	if o.balancerURL != "" {
		b, err := authsvc.NewBalancer(o.balancerURL, o.balancerAudience)
		if err != nil {
			return fmt.Errorf("-balancer-url: %w", err)
		}
		o.balancer = b
	}
	for _, f := range [][2]string{{"-signing-key", o.signingKey}, {"-users", o.users}, {"-admin-token-file", o.adminTokenFile}} {
		if err := secret.CheckRef(f[0], f[1]); err != nil {
			return err
		}
	}
	if err := o.gossip.Validate(); err != nil {
		return err
	}
	return o.tls.CheckFlags(o.bind, o.gossip.Dev, false)
}

// loadSigner reads -signing-key, a file or a parameter.
func loadSigner(ref string, ttl time.Duration) (*token.Signer, error) {
	pem, err := secret.Read("-signing-key", ref)
	if err != nil {
		return nil, err
	}
	priv, err := token.ParsePrivateKey([]byte(pem))
	if err != nil {
		return nil, fmt.Errorf("-signing-key %s: %w", ref, err)
	}
	return token.NewSigner(priv).WithTTL(ttl), nil
}

// loadUsers reads -users: a file as authsvc reads it, or a parameter
// through secret.Read, again on every reload.
func loadUsers(ref string) (*authsvc.UsersFile, error) {
	if !secret.IsParameter(ref) {
		return authsvc.NewUsersFile(ref)
	}
	return authsvc.NewUsersFileFrom(ref, func() ([]byte, error) {
		s, err := secret.Read("-users", ref)
		return []byte(s), err
	})
}

// runServe runs the auth service until SIGTERM/SIGINT.
func runServe(args []string, stderr io.Writer) error {
	o, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serve(ctx, o, stderr, nil)
}

// serve runs the auth service until ctx ends. ready, when set, is called
// with the HTTP and gossip addresses once both are listening (tests).
func serve(ctx context.Context, o *options, stderr io.Writer, ready func(httpAddr, gossipAddr string)) error {
	log := o.gossip.Logger(stderr)
	signer, err := loadSigner(o.signingKey, o.tokenTTL)
	if err != nil {
		return err
	}
	var creds authsvc.Authenticator
	var users *authsvc.UsersFile
	switch {
	case o.users != "":
		if users, err = loadUsers(o.users); err != nil {
			return err
		}
		creds = users
		log.Info("credentials: users file", "path", o.users, "users", users.Len())
		warnMixedCosts(users, log)
	case o.authCallback != "":
		creds = authsvc.NewHTTPCallback(o.authCallback, &http.Client{Timeout: o.callbackTimeout})
		log.Info("credentials: HTTP callback", "url", o.authCallback)
	case o.jwksURL != "":
		j, err := authsvc.NewJWKS(ctx, o.jwksURL, o.jwtIssuer, o.jwtAudience)
		if err != nil {
			return err
		}
		creds = j
		log.Info("credentials: bearer JWT", "jwks", o.jwksURL, "iss", o.jwtIssuer, "aud", o.jwtAudience)
	}
	var adminToken string
	if o.adminTokenFile != "" {
		if adminToken, err = secret.Read("-admin-token-file", o.adminTokenFile); err != nil {
			return err
		}
	}

	cc, err := o.gossip.ClusterConfig(o.name, cluster.RoleAuth, log)
	if err != nil {
		return err
	}
	jc, err := o.gossip.JoinConfig(ctx, log)
	if err != nil {
		return err
	}
	cl, err := cluster.Create(cc)
	if err != nil {
		return err
	}
	defer func() {
		if err := cl.Leave(); err != nil {
			log.Warn("leave cluster", "err", err)
		}
	}()
	// Join in the background: until a node is seen, /v1/connect answers
	// 503 no_capacity, which clients retry.
	joinCtx, stopJoin := context.WithCancel(ctx)
	defer stopJoin()                                    // before Leave
	go func() { _ = gossipcli.Join(joinCtx, cl, jc) }() // logs its own progress

	conf := authsvc.DefaultConfig()
	conf.Signer, conf.Credentials, conf.View = signer, creds, cl
	conf.AdminToken = adminToken
	conf.LoginRate, conf.LoginBurst = rate.Limit(o.loginRate), o.loginBurst
	conf.MaxUserTokens = o.maxUserTokens
	conf.TrustForwardedFor = o.trustForwardedFor
	conf.Logger = log
	if o.balancer != nil {
		conf.Picker = o.balancer
		log.Info("assigning every client to the balancer", "url", o.balancer.URL(), "audience", o.balancer.Audience())
	}
	srv, err := authsvc.New(conf)
	if err != nil {
		return err
	}

	handler := srv.Handler()
	if o.demo {
		// Off by default: the page is a demonstration with a pre-filled login.
		handler = jsclient.WithDemo(handler)
	}

	ln, err := net.Listen("tcp", o.bind)
	if err != nil {
		return fmt.Errorf("-bind: %w", err)
	}
	tc := *o.tls
	if tlscert.AutoNames(tc.Names) {
		// An IP certificate for this instance's public address. An Elastic
		// IP is associated after launch, so wait for it; systemd restarts
		// the service if it never comes.
		ip, err := discover.WaitPublicIPv4(ctx, nil, time.Second, 15*time.Second, 10*time.Minute, log)
		if err != nil {
			ln.Close()
			return fmt.Errorf("-tls-names auto: %w", err)
		}
		tc.Names = []string{ip}
	}
	tc.ListenAddr = ln.Addr().String()
	tc.Logger, tc.Registry = log, srv.Registry()
	if tc.Tickets == tlscert.TicketsCluster {
		if cc.SecretKey == nil {
			tc.Tickets = tlscert.TicketsProcess // -dev without a key: nothing shared to derive from
		}
		tc.TicketSecret = cc.SecretKey
	}
	certs, err := tlscert.New(&tc)
	if err != nil {
		ln.Close()
		return err
	}
	defer certs.Close()
	handler = withReadyz(handler, certs)
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(certs.Listener(ln)) }()
	// After the TLS listener serves: it answers tls-alpn-01 challenges.
	if err := certs.Start(ctx, tlscert.HealthOnly(handler)); err != nil {
		return err
	}
	scheme := "http"
	if certs.Scheme() == "wss" {
		scheme = "https"
	}
	log.Info("auth listening", "addr", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String(), "tls", string(certs.Mode()),
		"gossip", cl.GossipAddr(), "name", o.name, "kid", signer.KeyID())
	if ready != nil {
		ready(ln.Addr().String(), cl.GossipAddr())
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			reload(srv, cl, users, o, log)
			if err := certs.Reload(); err != nil {
				log.Error("reload TLS certificate; keeping the old one", "err", err)
			}
		case err := <-serveErr:
			return fmt.Errorf("http: %w", err)
		case <-ctx.Done():
			log.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
			err := hs.Shutdown(sctx)
			cancel()
			if err != nil {
				log.Warn("http shutdown", "err", err)
			}
			return nil
		}
	}
}

// reload re-reads every secret (SIGHUP): the signing key, the users file,
// the gossip keys and the admin token, from their files or parameters. One
// that cannot be read or is broken leaves its previous value in force, and
// the others still reload.
func reload(srv *authsvc.Server, cl *cluster.Cluster, users *authsvc.UsersFile, o *options, log *slog.Logger) {
	if s, err := loadSigner(o.signingKey, o.tokenTTL); err != nil {
		log.Error("reload signing key; keeping the old one", "err", err)
	} else {
		srv.SetSigner(s)
		log.Info("signing key reloaded", "kid", s.KeyID())
	}
	if users != nil {
		if err := users.Reload(); err != nil {
			log.Error("reload users file; keeping the old one", "err", err)
		} else {
			log.Info("users file reloaded", "users", users.Len())
			warnMixedCosts(users, log)
		}
	}
	if n, err := o.gossip.ReloadKeys(cl); err != nil {
		log.Error("reload gossip keys; keeping the old ones", "err", err)
	} else if n > 0 {
		log.Info("gossip keys reloaded", "keys", n)
	}
	if o.adminTokenFile != "" {
		tok, err := secret.Read("-admin-token-file", o.adminTokenFile)
		if err == nil {
			err = srv.SetAdminToken(tok)
		}
		if err != nil {
			log.Error("reload admin token; keeping the old one", "err", err)
		} else {
			log.Info("admin token reloaded")
		}
	}
}

// warnMixedCosts says when the users file mixes bcrypt costs: every check
// then costs as much as the highest, so that answer times do not tell user
// names apart, and the operator may want to rehash the cheap ones.
func warnMixedCosts(users *authsvc.UsersFile, log *slog.Logger) {
	if lo, hi := users.Costs(); lo != hi {
		log.Warn("users file mixes bcrypt costs; every login check costs as much as the highest, so that timing does not reveal which users exist",
			"lowest", lo, "highest", hi)
	}
}

// withReadyz adds GET /readyz: 200 while the TLS certificate is in place
// (always without TLS), else 503 with the reason.
func withReadyz(h http.Handler, certs *tlscert.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := certs.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready: TLS: "+err.Error()+"\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	return mux
}
