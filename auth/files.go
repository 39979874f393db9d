package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ServerConfigFile is the name of the generated nats-server config.
const ServerConfigFile = "nats-server.conf"

// SeedFile and EnvFile are the names of a user's files.
func SeedFile(user string) string { return user + ".nk" }
func EnvFile(user string) string  { return user + ".env" }

// Env is what a user's env file sets: the llmq flags' environment
// variables for its seed and inbox prefix.
func Env(seedPath, user string) string {
	return "LLMQ_NKEY=" + seedPath + "\nLLMQ_INBOX_PREFIX=" + Inbox(user) + "\n"
}

// WriteFiles writes g into dir (created 0700 when missing):
// nats-server.conf (0644: public keys and permissions only), and per user
// <user>.nk (the seed, 0600) and <user>.env (LLMQ_NKEY and
// LLMQ_INBOX_PREFIX, 0600). seedDir is where clients will find the seeds,
// for the env files; default dir itself, absolute. Existing files are an
// error unless overwrite. It returns the paths written.
func WriteFiles(dir, seedDir string, g *Generated, overwrite bool) ([]string, error) {
	if seedDir == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		seedDir = abs
	}
	type file struct {
		name string
		data []byte
		mode fs.FileMode
	}
	files := []file{{ServerConfigFile, g.ServerConfig, 0o644}}
	for _, c := range g.Credentials {
		files = append(files,
			file{SeedFile(c.Name), append(append([]byte{}, c.Seed...), '\n'), 0o600},
			file{EnvFile(c.Name), []byte("# llmq user " + c.Name + " (" + strings.Join(c.Roles, " + ") + ")\n" + Env(filepath.Join(seedDir, SeedFile(c.Name)), c.Name)), 0o600})
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if !overwrite {
		var exist []string
		for _, f := range files {
			if _, err := os.Lstat(filepath.Join(dir, f.name)); err == nil {
				exist = append(exist, f.name)
			}
		}
		if len(exist) > 0 {
			return nil, fmt.Errorf("auth: %s already has %s", dir, strings.Join(exist, ", "))
		}
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writeFile(path, f.data, f.mode); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

// writeFile writes through a temporary file (created 0600) renamed into
// place, so a seed is never readable by others, not even for a moment,
// and a reader never sees half a file.
func writeFile(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), mode)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("auth: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("auth: write %s: %w", path, err)
	}
	return nil
}
