/** SMTP delivery through nodemailer, from the plugin's `smtp` config (its password is usually {"$env": NAME}). */
import nodemailer, { type Transporter } from 'nodemailer';
import type { AuthConfig } from '../config.js';
import type { Mail, Transport } from './mailer.js';

export class SmtpTransport implements Transport {
  private readonly transporter: Transporter;
  private readonly from: string;

  constructor(smtp: NonNullable<AuthConfig['smtp']>) {
    this.from = smtp.from;
    this.transporter = nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password ?? '' } } : {}),
      // A stuck mail server must not keep sockets for ever.
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    });
  }

  async send(mail: Mail): Promise<void> {
    await this.transporter.sendMail({ from: this.from, to: mail.to, subject: mail.subject, text: mail.text });
  }

  close(): void {
    this.transporter.close();
  }
}
