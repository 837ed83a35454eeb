const en = {
  title: 'Share your photo',
  subtitle: 'It appears on the big screen in a moment, without its background.',
  takePhoto: 'Take a photo',
  choosePhotos: 'Choose photos',
  description: 'Message (optional)',
  descriptionPlaceholder: 'Say something…',
  smaller: 'Send smaller photos (faster)',
  pinTitle: 'Enter the event PIN',
  pinHelp: 'The PIN is shown at the venue, or scan the QR code.',
  pinLabel: 'Event PIN',
  join: 'Join',
  wrongPin: 'That PIN is not right. Check it and try again.',
  pinChanged: 'The event PIN was changed. Enter the new PIN (shown at the venue).',
  queued: 'Waiting to send…',
  uploading: 'Sending…',
  processing: 'Cutting out…',
  done: 'On the screen!',
  retrying: 'Relay busy or unreachable — retrying in {s} s',
  failed: 'Not sent',
  tooLarge: 'This photo is too large for the relay.',
  notPhoto: 'This is not a photo the relay can read. Send a JPEG, PNG or WebP.',
  damaged: 'This photo is damaged or incomplete.',
  deletedByOperator: 'The organisers removed this photo.',
  keptForOperator:
    'The relay kept this photo but could not cut it out. The organisers can try it again.',
  invite: 'Invite others',
  inviteHelp: 'Let a friend scan this code to join.',
  offline: 'Offline',
  remove: 'Remove',
  // The display wall.
  wallNeedsPin: 'Add ?pin=<event PIN> to this page’s address.',
  wallRemoved:
    'This display was removed by the operator. To show photos here again, open the display link with the event PIN.',
  wallPinChanged: 'The event PIN changed: open the new display link.',
  wallReconnecting: 'Reconnecting to the relay…',
  wallRefused: 'PIN refused or relay unreachable',
} as const;

type Key = keyof typeof en;

const ja: Record<Key, string> = {
  title: '写真をシェア',
  subtitle: '背景を切り抜いて、すぐに大きな画面に表示されます。',
  takePhoto: '写真を撮る',
  choosePhotos: '写真を選ぶ',
  description: 'メッセージ（任意）',
  descriptionPlaceholder: 'ひとことどうぞ…',
  smaller: '写真を小さくして送る（速い）',
  pinTitle: 'イベントPINを入力',
  pinHelp: 'PINは会場に表示されています。QRコードを読み取ることもできます。',
  pinLabel: 'イベントPIN',
  join: '参加する',
  wrongPin: 'PINが違います。確認してもう一度お試しください。',
  pinChanged: 'イベントPINが変更されました。新しいPIN（会場に表示）を入力してください。',
  queued: '送信待ち…',
  uploading: '送信中…',
  processing: '切り抜き中…',
  done: '画面に表示されました！',
  retrying: 'リレーが混雑中または接続できません — {s} 秒後に再試行',
  failed: '送信できませんでした',
  tooLarge: 'この写真はリレーには大きすぎます。',
  notPhoto: 'リレーが読み取れない形式です。JPEG、PNG、WebPで送ってください。',
  damaged: '写真が壊れているか、途中までしかありません。',
  deletedByOperator: 'この写真は主催者により削除されました。',
  keptForOperator: '写真は受け取りましたが、切り抜きできませんでした。主催者が再試行できます。',
  invite: '友だちを招待',
  inviteHelp: 'このコードを読み取ると参加できます。',
  offline: 'オフライン',
  remove: '削除',
  wallNeedsPin: 'このページのURLに ?pin=<イベントPIN> を付けてください。',
  wallRemoved:
    'この表示画面は運営者によって削除されました。もう一度表示するには、イベントPIN付きの表示用リンクを開いてください。',
  wallPinChanged: 'イベントPINが変更されました。新しい表示用リンクを開いてください。',
  wallReconnecting: 'リレーに再接続しています…',
  wallRefused: 'PINが拒否されたか、リレーに接続できません',
};

export type Messages = Record<Key, string>;

/** English or Japanese, from the browser's language. */
export function messages(languages: readonly string[] = navigator.languages): Messages {
  return languages.some((language) => language.toLowerCase().startsWith('ja')) ? ja : en;
}

export function format(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (_, key: string) => String(values[key] ?? ''));
}
