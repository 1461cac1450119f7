FROM kit-local/sh:host
WORKDIR /app
COPY data.txt /app/data.txt
RUN echo "about to fail" && cat /app/missing.txt
RUN echo never
