package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmq/llmq/client"
	"github.com/llmq/llmq/schema"
)

func (a *app) completeCmd() *cobra.Command {
	var (
		tier, system, codec string
		maxTokens           int
		temperature         float64
		stream, asJSON      bool
		timeout             time.Duration
		toolsFile, choice   string
		schemaFile          string
		images              []string
	)
	cmd := &cobra.Command{
		Use:   "complete [prompt]",
		Short: "Send a chat-completion job to a tier and print the answer",
		Long:  "complete sends one job. The prompt is the argument, or standard input when it is \"-\" or absent.",
		Example: `  llmq complete --tier tier1 "write a haiku about queues"
  echo "explain NATS" | llmq complete --tier tier2 --stream
  llmq complete --tools examples/tools.json "what is the weather in Paris?"
  llmq complete --json-schema city.schema.json "describe Rome"
  llmq complete --image photo.png "what is in this picture?"`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prompt := ""
			if len(args) == 1 && args[0] != "-" {
				prompt = args[0]
			} else {
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return err
				}
				prompt = strings.TrimSpace(string(b))
			}
			if prompt == "" {
				return errors.New("no prompt: give it as an argument or on standard input")
			}
			user := schema.Message{Role: schema.RoleUser, Content: schema.Content(prompt)}
			if len(images) > 0 {
				user.Content = ""
				user.Parts = []schema.ContentPart{{Type: schema.PartText, Text: prompt}}
				for _, img := range images {
					p, err := imagePart(img, schema.DefaultMaxImageBytes)
					if err != nil {
						return err
					}
					user.Parts = append(user.Parts, p)
				}
			}
			req := &schema.Request{Messages: []schema.Message{user}}
			if toolsFile != "" {
				tools, err := loadTools(toolsFile)
				if err != nil {
					return err
				}
				req.Tools = tools
			}
			req.ToolChoice = parseToolChoice(choice)
			if schemaFile != "" {
				rf, err := loadJSONSchema(schemaFile)
				if err != nil {
					return err
				}
				req.ResponseFormat = rf
			}
			if system != "" {
				req.Messages = append([]schema.Message{{Role: schema.RoleSystem, Content: schema.Content(system)}}, req.Messages...)
			}
			if maxTokens > 0 {
				req.MaxTokens = &maxTokens
			}
			if cmd.Flags().Changed("temperature") {
				req.Temperature = &temperature
			}
			if err := req.Validate(); err != nil {
				return err
			}
			ctx := cmd.Context()
			c, closeConn, err := a.producer(ctx, "llmq-complete", codec, timeout)
			if err != nil {
				return err
			}
			defer closeConn()
			out := cmd.OutOrStdout()
			if stream {
				s, err := c.Stream(ctx, tier, req)
				if err != nil {
					return err
				}
				printed := false
				for chunk, err := range s.All() {
					if err != nil {
						fmt.Fprintln(out)
						return err
					}
					if asJSON {
						b, _ := json.Marshal(chunk)
						fmt.Fprintln(out, string(b))
						continue
					}
					if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
						fmt.Fprint(out, chunk.Choices[0].Delta.Content)
						printed = true
					}
					if f, ok := out.(*os.File); ok {
						_ = f.Sync()
					}
				}
				if !asJSON {
					if calls := s.Response().ToolCalls(); printed || len(calls) == 0 {
						fmt.Fprintln(out)
					}
					printToolCalls(out, s.Response().ToolCalls())
				}
				return nil
			}
			resp, err := c.Complete(ctx, tier, req)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(resp)
			}
			if text := resp.Text(); text != "" || len(resp.ToolCalls()) == 0 {
				fmt.Fprintln(out, text)
			}
			printToolCalls(out, resp.ToolCalls())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&tier, "tier", "tier1", "tier (model_name) to send the job to")
	f.StringVar(&system, "system", "", "system prompt")
	f.IntVar(&maxTokens, "max-tokens", 0, "output token limit")
	f.Float64Var(&temperature, "temperature", 0, "sampling temperature")
	f.BoolVar(&stream, "stream", false, "print tokens as they arrive")
	f.BoolVar(&asJSON, "json", false, "print the whole reply (or each chunk) as JSON")
	f.StringVar(&codec, "codec", "msgpack", "wire codec: msgpack or json")
	f.DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for the answer")
	f.StringVar(&toolsFile, "tools", "", "JSON file of an array of OpenAI tools the model may call; calls are printed as \"tool call <id>: <name>(<arguments>)\"")
	f.StringVar(&choice, "tool-choice", "", "none, auto, required, or the name of the tool to force")
	f.StringVar(&schemaFile, "json-schema", "", "JSON Schema file the answer must match (response_format json_schema); also OpenAI's {name, schema, strict} object")
	f.StringArrayVar(&images, "image", nil, "image to send with the prompt: an http(s) URL, or a file sent as a data: URI (repeatable)")
	return cmd
}

// producer connects as name and returns a client speaking codec
// ("msgpack" or "json") with the given timeout, and what closes it.
func (a *app) producer(ctx context.Context, name, codec string, timeout time.Duration) (*client.Client, func(), error) {
	cc := client.Config{Subjects: a.subjects(nil), Timeout: timeout}
	switch codec {
	case "msgpack":
	case "json":
		cc.Codec = schema.JSON
	default:
		return nil, nil, fmt.Errorf("--codec %q: want msgpack or json", codec)
	}
	nc, err := a.connect(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	return client.New(nc, cc), nc.Close, nil
}
