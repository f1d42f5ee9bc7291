// Tool calls through the official SDKs, with the tool definitions Claude Code and Codex
// really send: the input each API delivers validates against the tool's schema (ajv), the
// usage counts exactly the pieces streamed, and a call cut by the output limit ends as
// max_tokens / length / incomplete with a prefix of the input.

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeLLM, startFakeLLM } from './server.js';
import { seededText } from './text-generator.js';
import { seededToolInput, toolInputTokens } from './tool-arguments.js';
import {
  asChatTool,
  claudeCodeTools,
  codexTool,
  codexTools,
  expectValid,
} from './tools.test-helper.js';

let fake: FakeLLM;
let anthropic: Anthropic;
let openai: OpenAI;

beforeAll(async () => {
  fake = await startFakeLLM({ tokens: 5, seed: 21 });
  anthropic = new Anthropic({ baseURL: fake.url, apiKey: 'test', maxRetries: 0 });
  openai = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.reset();
});

const tools = claudeCodeTools as unknown as Anthropic.Tool[];
const userTurn: Anthropic.MessageParam[] = [{ role: 'user', content: 'List the files.' }];
const chatTools = codexTools.map(asChatTool);

describe('Anthropic Messages, Claude Code tools', () => {
  it.each(claudeCodeTools.map((tool) => [tool.name, tool] as const))(
    '%s: streamed input validates, usage counts the pieces',
    async (name, tool) => {
      const stream = anthropic.messages.stream(
        {
          model: 'claude-sonnet-4-6',
          max_tokens: 4096,
          messages: userTurn,
          tools,
          tool_choice: { type: 'tool', name },
        },
        { headers: { 'x-fake-llm-tool-tokens': '15' } },
      );
      const jsonDeltas: string[] = [];
      stream.on('inputJson', (delta) => jsonDeltas.push(delta));
      const message = await stream.finalMessage();
      const record = await fake.waitForRequest(stream.request_id!);

      const call = message.content.at(-1);
      expect(call?.type === 'tool_use' && call.name).toBe(name);
      const raw = jsonDeltas.join('');
      expect(call?.type === 'tool_use' && call.input).toEqual(expectValid(tool.input_schema, raw));
      const toolTokens = toolInputTokens(21, tool.input_schema, 15);
      // One delta per piece (chunk 1), and usage = text + every piece of the input.
      expect(jsonDeltas).toHaveLength(toolTokens);
      expect(message.usage.output_tokens).toBe(5 + toolTokens);
      expect(record.tokensSent).toBe(message.usage.output_tokens);
      expect(record.toolInput).toBe(raw);
      expect(raw).toBe(seededToolInput(21, 15, undefined, tool.input_schema));
      expect(message.stop_reason).toBe('tool_use');
    },
  );

  it('non-streaming: the Message carries the parsed, valid input', async () => {
    for (const tool of claudeCodeTools) {
      const message = await anthropic.messages.create({
        model: 'claude-sonnet-4-6',
        max_tokens: 4096,
        messages: userTurn,
        tools,
        tool_choice: { type: 'tool', name: tool.name },
      });
      const call = message.content.find((block) => block.type === 'tool_use');
      expect(call?.name).toBe(tool.name);
      const json = seededToolInput(21, 12, undefined, tool.input_schema);
      expect(call?.input).toEqual(expectValid(tool.input_schema, json));
      expect(message.usage.output_tokens).toBe(5 + toolInputTokens(21, tool.input_schema, 12));
    }
  });

  it('max_tokens cutting the input: stop_reason max_tokens, a prefix of the input', async () => {
    const bash = claudeCodeTools[0]!;
    const stream = anthropic.messages.stream(
      {
        model: 'claude-sonnet-4-6',
        max_tokens: 5 + 4,
        messages: userTurn,
        tools,
        tool_choice: { type: 'any' },
      },
      { headers: { 'x-fake-llm-tool-tokens': '12' } },
    );
    let raw = '';
    stream.on('inputJson', (delta) => {
      raw += delta;
    });
    const message = await stream.finalMessage();
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.usage.output_tokens).toBe(9);
    expect(raw).toBe(seededToolInput(21, 12, 4, bash.input_schema));
    expect(seededToolInput(21, 12, undefined, bash.input_schema).startsWith(raw)).toBe(true);
    expect(() => JSON.parse(raw)).toThrow(SyntaxError);
    expect(fake.lastRequest?.toolInput).toBe(raw);
  });
});

describe('Chat Completions, Codex tools', () => {
  it.each(codexTools.map((tool) => [tool.name, tool] as const))(
    '%s: streamed arguments validate, completion_tokens counts the pieces',
    async (name, tool) => {
      const stream = openai.chat.completions.stream({
        model: 'gpt-4.1',
        messages: [{ role: 'user', content: 'Fix the bug.' }],
        tools: chatTools,
        tool_choice: { type: 'function', function: { name } },
        stream_options: { include_usage: true },
      });
      const completion = await stream.finalChatCompletion();
      const call = completion.choices[0]?.message.tool_calls?.[0];
      expect(call?.type === 'function' && call.function.name).toBe(name);
      const args = call?.type === 'function' ? call.function.arguments : '';
      expectValid(tool.parameters, args);
      expect(args).toBe(seededToolInput(21, 12, undefined, tool.parameters));
      expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
      expect(completion.usage?.completion_tokens).toBe(
        5 + toolInputTokens(21, tool.parameters, 12),
      );
    },
  );

  it('non-streaming, and a cut call ends with finish_reason length', async () => {
    const shell = codexTool('shell');
    const whole = await openai.chat.completions.create({
      model: 'gpt-4.1',
      messages: [{ role: 'user', content: 'Run the tests.' }],
      tools: chatTools,
      tool_choice: 'required',
    });
    const call = whole.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function.name).toBe('shell');
    expectValid(shell.parameters, call?.type === 'function' ? call.function.arguments : '');

    const cut = await openai.chat.completions.create({
      model: 'gpt-4.1',
      messages: [{ role: 'user', content: 'Run the tests.' }],
      tools: chatTools,
      tool_choice: 'required',
      max_completion_tokens: 5 + 3,
    });
    const partial = cut.choices[0]?.message.tool_calls?.[0];
    expect(cut.choices[0]?.finish_reason).toBe('length');
    expect(partial?.type === 'function' && partial.function.arguments).toBe(
      seededToolInput(21, 12, 3, shell.parameters),
    );
    expect(cut.usage?.completion_tokens).toBe(8);
  });
});

describe('Responses, Codex tools', () => {
  it.each(codexTools.map((tool) => [tool.name, tool] as const))(
    '%s: streamed function_call arguments validate, output_tokens counts the pieces',
    async (name, tool) => {
      const { data: stream, request_id } = await openai.responses
        .create({
          model: 'gpt-5-codex',
          input: 'Fix the bug.',
          tools: codexTools,
          tool_choice: { type: 'function', name },
          stream: true,
        })
        .withResponse();
      let deltas = '';
      let done: OpenAI.Responses.Response | undefined;
      for await (const event of stream) {
        if (event.type === 'response.function_call_arguments.delta') deltas += event.delta;
        if (event.type === 'response.completed') done = event.response;
      }
      const call = done?.output.find((item) => item.type === 'function_call');
      expect(call?.name).toBe(name);
      expect(call?.arguments).toBe(deltas);
      expectValid(tool.parameters, deltas);
      const toolTokens = toolInputTokens(21, tool.parameters, 12);
      expect(done?.usage?.output_tokens).toBe(5 + toolTokens);
      const record = await fake.waitForRequest(request_id!);
      expect(record.tokensSent).toBe(5 + toolTokens);
      expect(record.toolInput).toBe(deltas);
    },
  );

  it('non-streaming: a completed Response with a valid function_call; cut: incomplete', async () => {
    const plan = codexTool('update_plan');
    const response = await openai.responses.create({
      model: 'gpt-5-codex',
      input: 'Plan it.',
      tools: codexTools,
      tool_choice: { type: 'function', name: 'update_plan' },
    });
    expect(response.status).toBe('completed');
    expect(response.output_text).toBe(seededText({ seed: 21, tokens: 5 }));
    const call = response.output.find((item) => item.type === 'function_call');
    expect(call).toMatchObject({
      name: 'update_plan',
      status: 'completed',
      call_id: expect.stringMatching(/^call_/),
    });
    const args = expectValid(plan.parameters, call?.arguments ?? '') as { plan: unknown[] };
    expect(args.plan).toHaveLength(1);

    const cut = await openai.responses.create(
      {
        model: 'gpt-5-codex',
        input: 'Plan it.',
        tools: codexTools,
        tool_choice: 'required',
        max_output_tokens: 16,
      },
      { headers: { 'x-fake-llm-tokens': '10', 'x-fake-llm-tool-tokens': '20' } },
    );
    expect(cut.status).toBe('incomplete');
    expect(cut.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    const partial = cut.output.find((item) => item.type === 'function_call');
    expect(partial?.status).toBe('incomplete');
    expect(partial?.arguments).toBe(seededToolInput(21, 20, 6, codexTools[0]!.parameters));
    expect(cut.usage?.output_tokens).toBe(16);
  });
});
