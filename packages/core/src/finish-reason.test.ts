import { describe, expect, it } from 'vitest';
import { finishReason } from './finish-reason.js';

describe('finishReason', () => {
  it('maps provider stop reasons to the conventions finish reasons', () => {
    expect(finishReason('end_turn')).toBe('stop');
    expect(finishReason('stop')).toBe('stop');
    expect(finishReason('max_tokens')).toBe('length');
    expect(finishReason('length')).toBe('length');
    expect(finishReason('tool_use')).toBe('tool_call');
    expect(finishReason('tool_calls')).toBe('tool_call');
    expect(finishReason('refusal')).toBe('content_filter');
    expect(finishReason(undefined)).toBe('error');
    expect(finishReason('something_new')).toBe('something_new');
  });
});
