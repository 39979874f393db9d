package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmq/llmq/schema"
)

// embedPreview is how many components of a vector embed prints.
const embedPreview = 4

func (a *app) embedCmd() *cobra.Command {
	var (
		tier, codec string
		dimensions  int
		asJSON      bool
		timeout     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "embed [text...]",
		Short: "Send an embedding job to a tier and print the vectors",
		Long: "embed sends one embedding job: each argument is a text, or each line of standard input when there is none. " +
			"The tier must be of model_info.mode embedding. It prints, for each text, its index, its dimensions and its first values; " +
			"--json prints the whole reply (OpenAI's embeddings list with llmq's routing).",
		Example: `  llmq embed --tier embed "queues are nice" "so is NATS"
  llmq embed --tier embed --json --dimensions 4 "one text"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			texts := args
			if len(texts) == 0 {
				sc := bufio.NewScanner(cmd.InOrStdin())
				sc.Buffer(make([]byte, 64<<10), 1<<20)
				for sc.Scan() {
					if line := strings.TrimSpace(sc.Text()); line != "" {
						texts = append(texts, line)
					}
				}
				if err := sc.Err(); err != nil {
					return err
				}
			}
			if len(texts) == 0 {
				return errors.New("no text: give texts as arguments or lines on standard input")
			}
			req := &schema.Request{Input: texts}
			if dimensions > 0 {
				req.Dimensions = &dimensions
			}
			if err := req.Validate(); err != nil {
				return err
			}
			ctx := cmd.Context()
			c, closeConn, err := a.producer(ctx, "llmq-embed", codec, timeout)
			if err != nil {
				return err
			}
			defer closeConn()
			resp, err := c.Embed(ctx, tier, req)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(resp)
			}
			for _, e := range resp.Data {
				v := e.Embedding.Floats
				parts := make([]string, 0, embedPreview+1)
				for _, f := range v[:min(len(v), embedPreview)] {
					parts = append(parts, strconv.FormatFloat(float64(f), 'f', 4, 32))
				}
				if len(v) > embedPreview {
					parts = append(parts, "…")
				}
				fmt.Fprintf(out, "%d\t%d dimensions\t[%s]\n", e.Index, len(v), strings.Join(parts, " "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&tier, "tier", "embed", "tier (model_name of embedding deployments) to send the job to")
	f.IntVar(&dimensions, "dimensions", 0, "ask for vectors of this many dimensions, where the model can shorten them")
	f.BoolVar(&asJSON, "json", false, "print the whole reply as JSON")
	f.StringVar(&codec, "codec", "msgpack", "wire codec: msgpack or json")
	f.DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for the vectors")
	return cmd
}
