package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/internal/secretfile"
)

// Contexts, as kubectl's: named pairs of hub addresses and a creds file in
// a config file under the XDG config directory
// ($XDG_CONFIG_HOME/xhub/config.json, else ~/.config/xhub/config.json).
// --creds and XHUB_CREDS (and --hub, XHUB_HUB) still override; --context
// or XHUB_CONTEXT picks a context other than the current one.

// ContextConfig is the config file.
type ContextConfig struct {
	CurrentContext string         `json:"current-context,omitempty"`
	Contexts       []NamedContext `json:"contexts"`
}

// NamedContext is one context.
type NamedContext struct {
	Name  string `json:"name"`
	Hub   string `json:"hub,omitempty"` // comma-separated; empty: the creds file's
	Creds string `json:"creds"`         // absolute path
}

func configPath() (string, error) {
	if p := os.Getenv("XHUB_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	return filepath.Join(dir, "xhub", "config.json"), nil
}

func loadConfig() (ContextConfig, string, error) {
	path, err := configPath()
	if err != nil {
		return ContextConfig{}, "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ContextConfig{}, path, nil
	}
	if err != nil {
		return ContextConfig{}, path, fmt.Errorf("config %s: %w", path, err)
	}
	var cfg ContextConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return ContextConfig{}, path, fmt.Errorf("config %s: not an xhub config: %v", path, err)
	}
	return cfg, path, nil
}

func saveConfig(cfg ContextConfig, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return secretfile.Replace(path, append(b, '\n'))
}

func (cfg *ContextConfig) find(name string) int {
	return slices.IndexFunc(cfg.Contexts, func(c NamedContext) bool { return c.Name == name })
}

// applyContext fills --creds and --hub from a context. Precedence: the
// --creds flag; the --context flag; XHUB_CREDS; XHUB_CONTEXT; the current
// context.
func (c *cli) applyContext() error {
	if c.credsFlag || (c.creds != "" && !c.contextFlag) {
		return nil
	}
	cfg, path, err := loadConfig()
	if err != nil {
		return err
	}
	name := c.contextName
	if name == "" {
		name = cfg.CurrentContext
	}
	if name == "" {
		return nil
	}
	i := cfg.find(name)
	if i < 0 {
		return fmt.Errorf("context %q is not in %s (xhub config get-contexts)", name, path)
	}
	c.creds = cfg.Contexts[i].Creds
	if c.hub == "" {
		c.hub = cfg.Contexts[i].Hub
	}
	return nil
}

func (c *cli) configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Named contexts (hub + creds file), as kubectl's"}
	var hub, creds string
	set := &cobra.Command{
		Use:   "set-context NAME --creds FILE [--hub ADDR]",
		Short: "Add or change a context (the first one becomes current)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if name == "" || strings.ContainsAny(name, " \t\n/") || len(name) > 64 {
				return fmt.Errorf("context name %q: 1 to 64 characters, no spaces or slashes", name)
			}
			abs, err := filepath.Abs(creds)
			if err != nil {
				return err
			}
			if _, err := os.Stat(abs); err != nil {
				return fmt.Errorf("--creds: %w", err)
			}
			cfg, path, err := loadConfig()
			if err != nil {
				return err
			}
			nc := NamedContext{Name: name, Hub: hub, Creds: abs}
			if i := cfg.find(name); i >= 0 {
				cfg.Contexts[i] = nc
			} else {
				cfg.Contexts = append(cfg.Contexts, nc)
			}
			if cfg.CurrentContext == "" {
				cfg.CurrentContext = name
			}
			if err := saveConfig(cfg, path); err != nil {
				return err
			}
			c.say("context %s set in %s", name, path)
			return nil
		},
	}
	set.Flags().StringVar(&creds, "creds", "", "creds file (required)")
	set.Flags().StringVar(&hub, "hub", "", "hub address(es), comma-separated (default: the creds file's)")
	_ = set.MarkFlagRequired("creds")

	use := &cobra.Command{
		Use:   "use-context NAME",
		Short: "Make NAME the current context",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := loadConfig()
			if err != nil {
				return err
			}
			if cfg.find(args[0]) < 0 {
				return fmt.Errorf("context %q is not in %s (xhub config get-contexts)", args[0], path)
			}
			cfg.CurrentContext = args[0]
			if err := saveConfig(cfg, path); err != nil {
				return err
			}
			c.say("switched to context %s", args[0])
			return nil
		},
	}
	get := &cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts (* marks the current one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			cfg, _, err := loadConfig()
			if err != nil {
				return err
			}
			if c.json() {
				return c.printJSON(cfg)
			}
			w := c.table()
			w.row("CURRENT", "NAME", "HUB", "CREDS")
			for _, x := range cfg.Contexts {
				cur := ""
				if x.Name == cfg.CurrentContext {
					cur = "*"
				}
				h := x.Hub
				if h == "" {
					h = "(the creds file's)"
				}
				w.row(cur, x.Name, h, x.Creds)
			}
			return w.Flush()
		},
	}
	current := &cobra.Command{
		Use:   "current-context",
		Short: "Print the current context's name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := loadConfig()
			if err != nil {
				return err
			}
			if cfg.CurrentContext == "" {
				return errors.New("no current context (xhub config use-context NAME)")
			}
			c.say("%s", cfg.CurrentContext)
			return nil
		},
	}
	del := &cobra.Command{
		Use:   "delete-context NAME",
		Short: "Remove a context",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := loadConfig()
			if err != nil {
				return err
			}
			i := cfg.find(args[0])
			if i < 0 {
				return fmt.Errorf("context %q is not in %s", args[0], path)
			}
			cfg.Contexts = slices.Delete(cfg.Contexts, i, i+1)
			if cfg.CurrentContext == args[0] {
				cfg.CurrentContext = ""
			}
			if err := saveConfig(cfg, path); err != nil {
				return err
			}
			c.say("context %s deleted", args[0])
			return nil
		},
	}
	cmd.AddCommand(set, use, get, current, del)
	return cmd
}
