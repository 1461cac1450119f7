ARG ENVIRONMENT="default"
FROM kit-local/sh:host AS build
ARG ENVIRONMENT
WORKDIR /app
COPY data.txt /app/data.txt
RUN echo "building $ENVIRONMENT" && cat /app/data.txt && sleep 1 && echo done > /app/out.txt
FROM kit-local/sh:host AS final
COPY --from=build --chmod=0755 /app/out.txt /app/out.txt
RUN echo "final stage" && ls /app
ENTRYPOINT ["/bin/sh", "-c", "exec \"$@\"", "--"]
