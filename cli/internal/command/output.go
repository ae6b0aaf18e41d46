package command

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// Output formats of -o.
const (
	formatText = "text"
	formatJSON = "json"
	formatYAML = "yaml"
)

func addOutputFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVarP(dst, "output", "o", formatText, "output format: text, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{formatText, formatJSON, formatYAML}, cobra.ShellCompDirectiveNoFileComp
	})
}

func checkFormat(f string) error {
	switch f {
	case formatText, formatJSON, formatYAML:
		return nil
	}
	return usageErrorf("unknown output format %q: use -o text, json or yaml", f)
}

// printData writes v as JSON or YAML, or calls text for the text format.
func printData(w io.Writer, format string, v any, text func(io.Writer) error) error {
	switch format {
	case formatJSON, formatYAML:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		return writeJSONAs(w, format, b)
	default:
		return text(w)
	}
}

// writeJSONAs writes a JSON document as JSON, or as YAML with the keys in
// the same order.
func writeJSONAs(w io.Writer, format string, b []byte) error {
	if format != formatYAML {
		_, err := fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil { // JSON is YAML in flow style
		return err
	}
	blockStyle(&n)
	out, err := yaml.Marshal(&n)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

func blockStyle(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		n.Style &^= yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}
