package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Severity tells an error (the file cannot be used) from a warning (it
// can, but something in it does not do what it says).
type Severity int

// Severities.
const (
	Warning Severity = iota
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Diagnostic is one thing a check found, where it found it. No message
// repeats a value that came from the environment or that could be a key.
type Diagnostic struct {
	Severity Severity
	// Line in the file, from 1; 0 when no line applies (an empty file).
	Line int
	// Path is the YAML path of the key concerned, e.g.
	// "model_list[2].litellm_params.api_key"; empty for the document.
	Path string
	// Msg says what is wrong, without the path.
	Msg string
}

// String is "line 14: model_list[2].litellm_params.api_key: msg" (the form
// of Config.Warnings).
func (d Diagnostic) String() string {
	var b strings.Builder
	if d.Line > 0 {
		b.WriteString("line " + strconv.Itoa(d.Line) + ": ")
	}
	d.tail(&b)
	return b.String()
}

// Format is the compiler-style line of `llmq config check`:
// "config.yaml:14: error: model_list[2].litellm_params.api_key: msg".
func (d Diagnostic) Format(file string) string {
	var b strings.Builder
	b.WriteString(file)
	if d.Line > 0 {
		b.WriteString(":" + strconv.Itoa(d.Line))
	}
	b.WriteString(": " + d.Severity.String() + ": ")
	d.tail(&b)
	return b.String()
}

func (d Diagnostic) tail(b *strings.Builder) {
	if d.Path != "" {
		b.WriteString(d.Path + ": ")
	}
	b.WriteString(d.Msg)
}

// Errors is the error Parse returns: every error in the file, in line
// order.
type Errors []Diagnostic

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, d := range e {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// SortDiagnostics orders ds by line, then errors first, then path and
// message, so that output is stable.
func SortDiagnostics(ds []Diagnostic) {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(b.Severity, a.Severity),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
}

// diags collects diagnostics.
type diags []Diagnostic

func (ds *diags) add(sev Severity, line int, path, format string, args ...any) {
	*ds = append(*ds, Diagnostic{Severity: sev, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (ds *diags) errorf(line int, path, format string, args ...any) {
	ds.add(Error, line, path, format, args...)
}

func (ds *diags) warnf(line int, path, format string, args ...any) {
	ds.add(Warning, line, path, format, args...)
}

func (ds diags) errors() Errors {
	var out Errors
	for _, d := range ds {
		if d.Severity == Error {
			out = append(out, d)
		}
	}
	return out
}
