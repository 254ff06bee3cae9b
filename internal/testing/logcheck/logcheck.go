// Package logcheck checks the JSON log lines the commands write: each line
// one JSON object, no key twice in any object. encoding/json keeps the last
// of two equal keys without a word, so a duplicate (two layers each adding
// "component", say) would otherwise go unnoticed until a log pipeline
// chokes on it.
package logcheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Lines checks every non-empty line of logs and returns the number of
// lines, or an error naming the first bad line.
func Lines(logs []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		n++
		if err := Line(line); err != nil {
			return n, fmt.Errorf("log line %d: %w\n%s", n, err, line)
		}
	}
	return n, sc.Err()
}

// Line checks one log line: a single JSON object in which no object, at
// any depth, has a key twice.
func Line(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("not a JSON object (starts with %v)", tok)
	}
	if err := object(dec, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more than one JSON value on the line")
	}
	return nil
}

// object reads the members of an object whose '{' was read.
func object(dec *json.Decoder, path string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string) // the decoder only yields string keys here
		if seen[key] {
			return fmt.Errorf("duplicate key %q", strings.TrimPrefix(path+"."+key, "."))
		}
		seen[key] = true
		if err := value(dec, path+"."+key); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

func value(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return object(dec, path)
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := value(dec, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return nil
}
