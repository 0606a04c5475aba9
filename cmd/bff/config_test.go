package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMESettingsTable holds the README's settings table to the settings
// table of the command: every setting has a row, every row is a setting, and
// each row's default is the one --help shows, which comes from
// bff.DefaultConfig.
func TestREADMESettingsTable(t *testing.T) {
	rows := readmeSettings(t)
	known := map[string]bool{}
	for _, s := range settings {
		known[s.env] = true
		def, ok := rows[s.env]
		if !ok {
			t.Errorf("README's settings table has no row for %s", s.env)
			continue
		}
		if want := s.defaultText(); def != want {
			t.Errorf("README gives %s the default %q; the BFF's is %q", s.env, def, want)
		}
	}
	for env := range rows {
		if !known[env] {
			t.Errorf("README's settings table lists %s, which is not a setting", env)
		}
	}
}

// TestSettingDefaultsParse feeds each default, as --help and the README write
// it, back through its setting: it must mean the default.
func TestSettingDefaultsParse(t *testing.T) {
	for _, s := range settings {
		if s.value == nil {
			continue
		}
		def := s.value(defaultServeConfig(func(string) string { return "" }))
		if def == "" {
			continue
		}
		c := &serveConfig{}
		if err := s.set(c, def); err != nil {
			t.Errorf("%s: its default %q does not parse: %v", s.env, def, err)
			continue
		}
		if got := s.value(c); got != def {
			t.Errorf("%s: default %q reads back as %q", s.env, def, got)
		}
	}
}

// readmeSettings reads the table under "## Configuration": variable →
// default, with backticks dropped and "—" (no default) as "".
func readmeSettings(t *testing.T) map[string]string {
	t.Helper()
	src, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(src), "\n## Configuration\n")
	if !ok {
		t.Fatal(`README.md has no "## Configuration" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if !strings.HasPrefix(line, "| `BFF_") || len(cells) < 3 {
			continue
		}
		def := strings.TrimSpace(strings.ReplaceAll(cells[1], "`", ""))
		if def == "—" {
			def = ""
		}
		for _, field := range strings.Split(cells[0], "`") {
			if strings.HasPrefix(field, "BFF_") {
				if _, dup := rows[field]; dup {
					t.Errorf("README lists %s twice", field)
				}
				rows[field] = def
			}
		}
	}
	if len(rows) == 0 {
		t.Fatal("README's settings table has no rows")
	}
	return rows
}
