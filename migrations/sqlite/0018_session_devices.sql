-- What tells a person's sessions apart on their account page and an admin's view of them: the
-- browser (its User-Agent, cut to 256 characters) and the address it signed in from.
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN address TEXT;
