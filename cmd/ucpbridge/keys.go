package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ucpbridge/ucpbridge/mandate"
)

const keysUsage = `usage: ucpbridge keys generate --out FILE [--format jwk|pem] [--kid KID]
       ucpbridge keys jwks [--kid KID] FILE

generate makes an ES256 (P-256) signing key, writes it to --out (mode
0600; an existing file is never replaced) and prints its public JWKS, the
"signing_keys" of a UCP profile. The kid defaults to the key's RFC 7638
thumbprint; a PEM file cannot hold a kid, so a --kid given with
--format pem must be given again wherever the file is read.

jwks reads a key file (a private JWK, or PEM: PKCS#8 or SEC 1) and prints
its public JWKS; --kid overrides the kid it holds.
`

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: generate or jwks?")
	}
	switch args[0] {
	case "generate":
		return keysGenerate(args[1:], stdout, stderr)
	case "jwks":
		return keysJWKS(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	}
	fmt.Fprint(stderr, keysUsage)
	return fmt.Errorf("keys: unknown subcommand %q", args[0])
}

func keysGenerate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	usageWith(fs, stderr, keysUsage)
	format := fs.String("format", "jwk", "key file format: jwk or pem")
	kid := fs.String("kid", "", "key id (default: the RFC 7638 thumbprint)")
	out := fs.String("out", "", "file to write the private key to (required; mode 0600, never overwritten)")
	if err := parseFlags(fs, args, os.LookupEnv); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("keys generate: --out FILE is required")
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	k, err := mandate.NewSigningKey(priv, *kid)
	if err != nil {
		return err
	}
	var data []byte
	switch *format {
	case "jwk":
		data, err = k.MarshalPrivateJWK()
		data = append(data, '\n')
	case "pem":
		data, err = k.MarshalPrivatePEM()
	default:
		return fmt.Errorf("keys generate: --format %q: want jwk or pem", *format)
	}
	if err != nil {
		return err
	}
	if err := writeNewFile(*out, data); err != nil {
		return fmt.Errorf("keys generate: %w", err)
	}
	return printJWKS(stdout, k)
}

func keysJWKS(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys jwks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	usageWith(fs, stderr, keysUsage)
	kid := fs.String("kid", "", "key id to publish (default: the file's kid, or the RFC 7638 thumbprint)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("keys jwks: one key FILE is required")
	}
	k, err := mandate.LoadSigningKey(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("keys jwks: %w", err)
	}
	if *kid != "" {
		if k, err = mandate.NewSigningKey(k.PrivateKey(), *kid); err != nil {
			return err
		}
	}
	return printJWKS(stdout, k)
}

func printJWKS(w io.Writer, k *mandate.SigningKey) error {
	b, err := json.MarshalIndent(k.JWKS(), "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeNewFile creates path with mode 0600 and writes data; an existing
// file is an error (a key is never silently replaced), and a failed write
// leaves no partial file.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}
