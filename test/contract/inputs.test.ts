import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKEND_KINDS, sentMessages, startFake } from '../support/backends.js';
import { startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';

const PIXEL = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

describe.each(BACKEND_KINDS)('image and reasoning inputs over %s', (kind) => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  let images: Server;
  let imageUrl: string;

  beforeAll(async () => {
    images = createServer((request, response) => {
      if (request.url === '/pixel.png') response.writeHead(200, { 'content-type': 'image/png' }).end(PIXEL);
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
    imageUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
    fake = await startFake(kind);
    ferry = await startFerry({ backends: [{ name: 'local', kind, url: fake.url }] });
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
    await new Promise((resolve) => images.close(resolve));
  });

  const ask = (image_url: string) =>
    ferry.client.responses.create({
      model: 'test-model',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'What is this?' },
            { type: 'input_image', image_url, detail: 'auto' },
          ],
        },
      ],
    });

  it('passes a data: URL image in the backend format (49, 50)', async () => {
    const dataUrl = `data:image/png;base64,${PIXEL.toString('base64')}`;
    const response = await ask(dataUrl);
    expect(response.status).toBe('completed');
    const [message] = sentMessages(fake);
    if (kind === 'ollama')
      expect(message).toMatchObject({ content: 'What is this?', images: [PIXEL.toString('base64')] });
    else
      expect(message!.content).toEqual([
        { type: 'text', text: 'What is this?' },
        { type: 'image_url', image_url: { url: dataUrl } },
      ]);
    const items = await ferry.client.responses.inputItems.list(response.id);
    expect(items.data[0]).toMatchObject({
      content: [{ type: 'input_text' }, { type: 'input_image', detail: 'auto' }],
    });
  });

  it('downloads http(s) images for Ollama and leaves them to chat servers', async () => {
    await ask(`${imageUrl}/pixel.png`);
    const [message] = sentMessages(fake);
    if (kind === 'ollama') expect(message!.images).toEqual([PIXEL.toString('base64')]);
    else
      expect(message!.content).toContainEqual({
        type: 'image_url',
        image_url: { url: `${imageUrl}/pixel.png` },
      });
  });

  it.runIf(kind === 'ollama')('refuses an image it cannot download with a 400', async () => {
    const error = await ask(`${imageUrl}/missing.png`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('failed_to_download_image');
  });

  it('resolves a reasoning item sent back by id only, and 404s one that was never stored (56)', async () => {
    fake.setHandler(() => ({
      steps: [
        { type: 'thinking', text: 'deep thought' },
        { type: 'text', text: '42' },
      ],
    }));
    const first = await ferry.client.responses.create({ model: 'test-model', input: 'q' });
    const reasoning = first.output.find((item) => item.type === 'reasoning')!;
    const message = first.output.find((item) => item.type === 'message')!;
    await ferry.client.responses.create({
      model: 'test-model',
      input: [
        { role: 'user', content: 'q' },
        { type: 'reasoning', id: reasoning.id, summary: [] },
        { type: 'item_reference', id: message.id },
        { role: 'user', content: 'and?' },
      ],
    });
    const sent = sentMessages(fake);
    expect(sent[1]).toMatchObject({ role: 'assistant' });
    expect(JSON.stringify(sent[1])).toContain('deep thought');
    const error = await ferry.client.responses
      .create({ model: 'test-model', input: [{ type: 'reasoning', id: 'rs_never_stored', summary: [] }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as Error).message).toContain('rs_never_stored');
  });
});
