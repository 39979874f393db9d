package auth

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/llmq/llmq/broker"
)

// User is one NATS user: a name (its inbox is _INBOX.<name>) and the roles
// whose subjects it gets.
type User struct {
	Name  string
	Roles []string
}

// MaxUserLen bounds a user name: it is a subject token of every reply
// subject the user gets.
const MaxUserLen = 64

// DefaultUsers returns one user per role, named after it. The dispatcher
// user also gets the batch runner's subjects: `llmq dispatcher` runs a
// batch runner unless --no-batch.
func DefaultUsers(roles []string) []User {
	users := make([]User, 0, len(roles))
	for _, r := range roles {
		u := User{Name: r, Roles: []string{r}}
		if r == Dispatcher {
			u.Roles = append(u.Roles, BatchRunner)
		}
		users = append(users, u)
	}
	return users
}

// ParseUser parses NAME=ROLE[+ROLE...].
func ParseUser(s string) (User, error) {
	name, roles, ok := strings.Cut(s, "=")
	if !ok || name == "" || roles == "" {
		return User{}, fmt.Errorf("user %q: want NAME=ROLE[+ROLE...]", s)
	}
	u := User{Name: name, Roles: strings.Split(roles, "+")}
	return u, u.check()
}

func (u User) check() error {
	if u.Name == "" || len(u.Name) > MaxUserLen || broker.Token(u.Name) != u.Name {
		return fmt.Errorf("user %q: want 1 to %d letters, digits, '-' or '_'", u.Name, MaxUserLen)
	}
	if len(u.Roles) == 0 {
		return fmt.Errorf("user %s: no role", u.Name)
	}
	for _, r := range u.Roles {
		if _, err := RoleByName(r); err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
	}
	return nil
}

// Config says what to generate.
type Config struct {
	// Prefix is the subject prefix. Default broker.DefaultPrefix.
	Prefix string
	// Users to create; at least one.
	Users []User
	// Listen is the server's client address. Default "0.0.0.0:4222".
	Listen string
	// StoreDir enables JetStream (batches) stored there. Empty: no
	// JetStream.
	StoreDir string
}

// Credential is a generated user's identity.
type Credential struct {
	User
	// PublicKey is the user's nkey ("U..."), what the server config names.
	PublicKey string
	// Seed is the private seed ("SU..."), what the client's --nkey file
	// holds. Secret.
	Seed []byte
	Permissions
}

// Generated is a server config and the credentials it accepts.
type Generated struct {
	ServerConfig []byte
	Credentials  []Credential
}

// Generate makes an nkey per user and the nats-server config that admits
// those users with their roles' permissions and nobody else.
func Generate(c Config) (*Generated, error) {
	if len(c.Users) == 0 {
		return nil, errors.New("auth: no users")
	}
	prefix := c.Prefix
	if prefix == "" {
		prefix = broker.DefaultPrefix
	}
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	listen := c.Listen
	if listen == "" {
		listen = "0.0.0.0:4222"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("auth: listen %q: %w", listen, err)
	}
	if _, err := strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("auth: listen %q: bad port", listen)
	}
	g := &Generated{}
	for _, u := range c.Users {
		if err := u.check(); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		if slices.ContainsFunc(g.Credentials, func(c Credential) bool { return c.Name == u.Name }) {
			return nil, fmt.Errorf("auth: user %s twice", u.Name)
		}
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, fmt.Errorf("auth: nkey: %w", err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("auth: nkey: %w", err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, fmt.Errorf("auth: nkey: %w", err)
		}
		perms, err := PermissionsFor(prefix, u.Name, u.Roles...)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		g.Credentials = append(g.Credentials, Credential{User: u, PublicKey: pub, Seed: seed, Permissions: perms})
	}
	g.ServerConfig = serverConfig(prefix, host, port, c.StoreDir, g.Credentials)
	return g, nil
}

// validPrefix: the prefix goes into every subject and permission; it
// must be literal tokens.
func validPrefix(p string) error {
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" || broker.Token(tok) != tok {
			return fmt.Errorf("auth: prefix %q: want dot-separated tokens of letters, digits, '-' or '_'", p)
		}
	}
	return nil
}

// ResponsesExpire is how long after receiving a message a role with
// Responses may answer its reply subject.
const ResponsesExpire = 2 * time.Minute

// serverConfig renders the nats-server config. Every string is quoted:
// unquoted, nats-server reads "$JS…" as a variable.
func serverConfig(prefix, host, port, storeDir string, creds []Credential) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# nats-server config for llmq (subject prefix %q), written by llmq auth init.\n", prefix)
	b.WriteString("# Only the users below may connect; each may use only its role's subjects\n")
	b.WriteString("# (docs/security.md). The seeds are in the <user>.nk files, not here.\n")
	fmt.Fprintf(&b, "host: %q\nport: %s\n", host, port)
	if storeDir != "" {
		fmt.Fprintf(&b, "\njetstream {\n  store_dir: %q\n}\n", storeDir)
	}
	b.WriteString("\nauthorization {\n  users = [\n")
	for _, c := range creds {
		fmt.Fprintf(&b, "    # %s: %s\n", c.Name, strings.Join(c.Roles, " + "))
		fmt.Fprintf(&b, "    {\n      nkey: %q\n      permissions: {\n", c.PublicKey)
		fmt.Fprintf(&b, "        publish: { allow: %s }\n", quoteList(c.Publish))
		fmt.Fprintf(&b, "        subscribe: { allow: %s }\n", quoteList(c.Subscribe))
		if c.Responses {
			// Not "true" (max 1): every chunk of a stream carries the same
			// reply subject, and the server counts each delivery against
			// max, so the producer's cancel would be refused after an even
			// number of chunks. Unlimited, for two minutes after the first.
			fmt.Fprintf(&b, "        allow_responses: { max: -1, expires: %q }\n", ResponsesExpire.String())
		}
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return []byte(b.String())
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
