package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Without --access-key, serve keeps the key it generates in a small state file, so
// that a function app's local.settings.json written once keeps working across
// restarts (the emulator behaves the same way with its fixed key).

// state is the content of the state file.
type state struct {
	AccessKey string `json:"accessKey"`
}

// defaultStateFile is $XDG_STATE_HOME/signalbox/state.json, else
// ~/.local/state/signalbox/state.json.
func (a *app) defaultStateFile() (string, error) {
	if dir := a.getenv("XDG_STATE_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "signalbox", "state.json"), nil
	}
	home := a.getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", err
		}
	}
	return filepath.Join(home, ".local", "state", "signalbox", "state.json"), nil
}

// stableKey returns the access key kept in path, creating the file with a new key
// when it does not exist. Two servers starting at once agree on one key: the file is
// created exclusively and the loser reads the winner's.
func stableKey(path string) (key string, created bool, err error) {
	if k, err := readState(path); err == nil {
		return k, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, err
	}
	b, _ := json.MarshalIndent(state{AccessKey: generateAccessKey()}, "", "  ")
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return "", false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return "", false, err
	}
	if err := tmp.Close(); err != nil {
		return "", false, err
	}
	// A hard link fails if path exists: the first writer wins, whole file or nothing.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", false, err
	} else if err == nil {
		created = true
	}
	k, err := readState(path)
	return k, created, err
}

func readState(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return "", fmt.Errorf("state file %s: %w (delete it to get a new key)", path, err)
	}
	if st.AccessKey == "" {
		return "", fmt.Errorf("state file %s has no accessKey (delete it to get a new key)", path)
	}
	return st.AccessKey, nil
}
